//! Pictures: decode what `ferroflow::plot` wrote and check sizes, where each colour lands,
//! frame counts, and that bad input is an error naming the file.

use std::fs::File;
use std::path::{Path, PathBuf};

use ferroflow::data::Points;
use ferroflow::plot::{
    self, AxisRange, Grid, Layer, LegendPosition, Panel, PanelContent, PlotErrorKind, PlotOptions, Rgb,
};

/// A decoded RGB picture.
struct Picture {
    width: usize,
    height: usize,
    rgb: Vec<u8>,
}

impl Picture {
    fn read(path: &Path) -> Picture {
        let decoder = png::Decoder::new(File::open(path).expect("the picture exists"));
        let mut reader = decoder.read_info().expect("a PNG header");
        let mut rgb = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut rgb).expect("a PNG frame");
        assert_eq!((info.color_type, info.bit_depth), (png::ColorType::Rgb, png::BitDepth::Eight));
        rgb.truncate(info.buffer_size());
        Picture { width: info.width as usize, height: info.height as usize, rgb }
    }

    /// The (x, y) of every pixel for which `pred(r, g, b)` holds.
    fn pixels(&self, pred: impl Fn(u8, u8, u8) -> bool) -> Vec<(usize, usize)> {
        self.rgb
            .chunks_exact(3)
            .enumerate()
            .filter(|(_, p)| pred(p[0], p[1], p[2]))
            .map(|(i, _)| (i % self.width, i / self.width))
            .collect()
    }
}

/// Red `#d62728` over white at any opacity ≥ 0.3: red stays high, green and blue well below it.
fn reddish(r: u8, g: u8, b: u8) -> bool {
    r > 180 && r as i32 - g as i32 > 60 && r as i32 - b as i32 > 60
}

/// Blue `#1f77b4` over white at opacity ≥ 0.3.
fn bluish(r: u8, g: u8, b: u8) -> bool {
    b as i32 - r as i32 > 50 && b as i32 - g as i32 > 15
}

/// Orange `#ff7f0e` over white at opacity ≥ 0.3.
fn orangeish(r: u8, g: u8, b: u8) -> bool {
    r > 230 && g < 215 && b < 180 && g as i32 - b as i32 > 30
}

/// `n` points on a 2D lattice filling the box `[x0, x1] × [y0, y1]`.
fn cluster(n: usize, (x0, x1): (f32, f32), (y0, y1): (f32, f32)) -> Points {
    let side = (n as f64).sqrt().ceil() as usize;
    let data = (0..n)
        .flat_map(|k| {
            let (i, j) = ((k % side) as f32 / (side - 1) as f32, (k / side) as f32 / (side - 1) as f32);
            [x0 + i * (x1 - x0), y0 + j * (y1 - y0)]
        })
        .collect();
    Points::new(data, n, 2).unwrap()
}

/// Small, fast options: fixed range [−1, 1]², no legend, no title, no aspect widening.
fn small() -> PlotOptions {
    PlotOptions {
        width: 240,
        height: 220,
        range: AxisRange::Fixed { x: (-1.0, 1.0), y: (-1.0, 1.0) },
        equal_aspect: false,
        legend: LegendPosition::Hidden,
        ..PlotOptions::default()
    }
}

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// Files in `dir` other than `keep` (e.g. leftover temporary files).
fn others(dir: &Path, keep: &[&str]) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !keep.iter().any(|k| p.file_name().unwrap() == *k))
        .collect()
}

#[test]
fn scatter_colours_only_the_quadrants_holding_the_points() {
    let dir = tmp();
    let path = dir.path().join("s.png");
    let upper_right = cluster(400, (0.5, 0.9), (0.5, 0.9));
    let lower_left = cluster(400, (-0.9, -0.5), (-0.9, -0.5));
    let layers = [
        Layer { points: &upper_right, label: "a", color: Rgb::RED },
        Layer { points: &lower_left, label: "b", color: Rgb::BLUE },
    ];
    plot::scatter(&path, &layers, &small()).unwrap();
    let pic = Picture::read(&path);
    assert_eq!((pic.width, pic.height), (240, 220));
    // The plot area's centre (data (0, 0)) is right of and above the picture's centre (the
    // axis labels take the left and bottom), so data x > 0.5 lies right of width / 2 and data
    // y > 0.5 above height / 2; x < −0.5, y < −0.5 the other way.
    let (cx, cy) = (pic.width / 2, pic.height / 2);
    let red = pic.pixels(reddish);
    let blue = pic.pixels(bluish);
    // 400 discs of radius 3 over a 0.4 × 0.4 box (~40 × 40 px): well over 500 pixels each.
    assert!(red.len() > 500 && blue.len() > 500, "red {} blue {}", red.len(), blue.len());
    assert!(red.iter().all(|&(x, y)| x > cx && y < cy), "a red pixel outside the upper right");
    assert!(blue.iter().all(|&(x, y)| x < cx && y > cy), "a blue pixel outside the lower left");
    assert_eq!(others(dir.path(), &["s.png"]), Vec::<PathBuf>::new(), "no temporary file is left");
}

#[test]
fn scatter_auto_range_is_not_squashed_by_outliers() {
    let dir = tmp();
    let path = dir.path().join("s.png");
    let mut p = cluster(1000, (0.0, 1.0), (0.0, 1.0));
    p.data[0] = 1e4; // two outliers among 1002 values per axis: 0.2 % < the default quantile
    p.data[2] = -1e4;
    let opts = PlotOptions { range: AxisRange::default(), ..small() };
    plot::scatter(&path, &[Layer { points: &p, label: "p", color: Rgb::RED }], &opts).unwrap();
    let pic = Picture::read(&path);
    let red = pic.pixels(reddish);
    let (lo, hi) = (red.iter().map(|p| p.0).min().unwrap(), red.iter().map(|p| p.0).max().unwrap());
    // The bulk spans the plot area (240 − 108 px wide, less 2 × 6 % padding): > 100 px. Had the
    // outliers set the range, the bulk would be a 1e-4-wide sliver of one or two pixels.
    assert!(hi - lo > 100, "bulk spans only {lo}..{hi}");
}

#[test]
fn trajectories_put_starts_left_ends_right_and_paths_between() {
    let dir = tmp();
    let path = dir.path().join("t.png");
    let x0 = cluster(100, (-0.9, -0.7), (-0.5, 0.5));
    let x1 = cluster(100, (0.7, 0.9), (-0.5, 0.5));
    let traj: Vec<Points> = (0..=4)
        .map(|k| {
            let t = k as f32 / 4.0;
            let data = x0.data.iter().zip(&x1.data).map(|(a, b)| (1.0 - t) * a + t * b).collect();
            Points::new(data, 100, 2).unwrap()
        })
        .collect();
    plot::trajectories(&path, &traj, None, &PlotOptions { max_paths: 10, ..small() }).unwrap();
    let pic = Picture::read(&path);
    let orange = pic.pixels(orangeish);
    let blue = pic.pixels(bluish);
    assert!(orange.len() > 100 && blue.len() > 100, "orange {} blue {}", orange.len(), blue.len());
    let orange_right = orange.iter().map(|p| p.0).max().unwrap();
    let blue_left = blue.iter().map(|p| p.0).min().unwrap();
    assert!(orange_right + 40 < blue_left, "starts ..{orange_right} should be well left of ends {blue_left}..");
    // Between them only the paths are drawn: dark grey pixels (the grid is lighter than 200).
    let between = pic.pixels(|r, g, b| r < 170 && r.abs_diff(g) < 12 && g.abs_diff(b) < 12);
    let n_between = between.iter().filter(|p| p.0 > orange_right + 5 && p.0 + 5 < blue_left).count();
    // 10 paths crossing ≥ 30 columns each: at least 300 path pixels.
    assert!(n_between >= 300, "only {n_between} path pixels between the ends");
}

#[test]
fn panels_place_each_plot_in_its_own_column() {
    let dir = tmp();
    let path = dir.path().join("p.png");
    let a = cluster(200, (-0.5, 0.5), (-0.5, 0.5));
    let panels = [
        Panel {
            title: "left",
            content: PanelContent::Scatter(vec![Layer { points: &a, label: "a", color: Rgb::RED }]),
        },
        Panel {
            title: "right",
            content: PanelContent::Scatter(vec![Layer { points: &a, label: "a", color: Rgb::BLUE }]),
        },
    ];
    plot::panels(&path, &panels, &PlotOptions { title: Some("both".into()), ..small() }).unwrap();
    let pic = Picture::read(&path);
    assert_eq!(pic.width, 2 * 240);
    assert!(pic.height > 220, "the overall title adds height");
    let (red, blue) = (pic.pixels(reddish), pic.pixels(bluish));
    assert!(!red.is_empty() && !blue.is_empty());
    assert!(red.iter().all(|p| p.0 < 240) && blue.iter().all(|p| p.0 >= 240));
}

#[test]
fn flow_gif_has_one_frame_per_recorded_time() {
    let dir = tmp();
    let path = dir.path().join("f.gif");
    let traj: Vec<Points> = (0..6).map(|k| cluster(50, (-0.5, 0.0 + k as f32 * 0.1), (-0.5, 0.5))).collect();
    plot::flow_gif(&path, &traj, &PlotOptions { width: 160, height: 150, frame_delay_ms: 120, ..small() }).unwrap();
    let mut opts = gif::DecodeOptions::new();
    opts.set_color_output(gif::ColorOutput::RGBA);
    let mut decoder = opts.read_info(File::open(&path).unwrap()).unwrap();
    assert_eq!((decoder.width(), decoder.height()), (160, 150));
    let mut delays = Vec::new();
    while let Some(frame) = decoder.read_next_frame().unwrap() {
        delays.push(frame.delay);
    }
    // 6 recorded times → 6 frames; 120 ms is stored as 12 hundredths of a second.
    assert_eq!(delays, vec![12; 6]);
}

#[test]
fn flow_frames_fill_a_folder_and_drop_stale_ones() {
    let dir = tmp();
    let frames = dir.path().join("frames");
    std::fs::create_dir(&frames).unwrap();
    std::fs::write(frames.join("frame_0009.png"), b"stale").unwrap();
    let traj: Vec<Points> = (0..3).map(|_| cluster(20, (-0.5, 0.5), (-0.5, 0.5))).collect();
    plot::flow_gif(&frames, &traj, &small()).unwrap();
    let mut names: Vec<String> =
        std::fs::read_dir(&frames).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    assert_eq!(names, ["frame_0000.png", "frame_0001.png", "frame_0002.png"]);
    let pic = Picture::read(&frames.join("frame_0002.png"));
    assert_eq!((pic.width, pic.height), (240, 220));
}

#[test]
fn heatmap_runs_dark_to_bright_with_the_values() {
    let dir = tmp();
    let path = dir.path().join("h.png");
    // Values rise with x (column i); the left edge is −∞ (zero density) and is allowed.
    let (nx, ny) = (20, 10);
    let values = (0..nx * ny).map(|k| if k % nx == 0 { f64::NEG_INFINITY } else { (k % nx) as f64 }).collect();
    let grid = Grid { values, nx, ny, x_range: (-1.0, 1.0), y_range: (-1.0, 1.0) };
    plot::heatmap(&path, &grid, None, &small()).unwrap();
    let pic = Picture::read(&path);
    assert!(pic.width > 240, "the colour bar adds width");
    // viridis' ends: dark purple (68, 1, 84) for low values, yellow (253, 231, 37) for high.
    let purple = pic.pixels(|r, g, b| r.abs_diff(68) < 12 && g < 20 && b.abs_diff(84) < 12);
    let yellow = pic.pixels(|r, g, b| r > 200 && g > 200 && b < 90);
    // The colour bar (right of the plot) holds both ends too; compare inside the plot only.
    let bar_left = pic.width - 96;
    let plot_purple: Vec<_> = purple.iter().filter(|p| p.0 < bar_left).collect();
    let plot_yellow: Vec<_> = yellow.iter().filter(|p| p.0 < bar_left).collect();
    assert!(plot_purple.len() > 100 && plot_yellow.len() > 100, "{} {}", plot_purple.len(), plot_yellow.len());
    let purple_right = plot_purple.iter().map(|p| p.0).max().unwrap();
    let yellow_left = plot_yellow.iter().map(|p| p.0).min().unwrap();
    assert!(purple_right < yellow_left, "low values ..{purple_right} must lie left of high ones {yellow_left}..");
    assert!(purple.len() > plot_purple.len() && yellow.len() > plot_yellow.len(), "the colour bar shows both ends");
}

/// The kind of error in `result`, after checking that it names `path`, that it converts to
/// `ferroflow::Error::Plot` with the same message, and that nothing was written at `path`.
fn kind_of(path: &Path, result: Result<(), plot::PlotError>) -> PlotErrorKind {
    let err = result.expect_err("bad input must be an error");
    assert_eq!(err.path, path);
    let message = err.to_string();
    assert!(message.contains(&*path.to_string_lossy()), "{message}");
    assert!(!path.exists(), "nothing is written for bad input");
    match ferroflow::Error::from(err) {
        ferroflow::Error::Plot(e) => {
            assert_eq!(e.to_string(), message);
            e.kind
        }
        other => panic!("expected Error::Plot, got {other:?}"),
    }
}

#[test]
fn bad_points_are_errors_naming_the_input() {
    let dir = tmp();
    let path = dir.path().join("bad.png");
    let opts = small();
    let scatter = |p: &Points| plot::scatter(&path, &[Layer { points: p, label: "s", color: Rgb::RED }], &opts);

    let three_d = Points::new(vec![0.0; 6], 2, 3).unwrap();
    assert!(
        matches!(kind_of(&path, scatter(&three_d)), PlotErrorKind::NotTwoD { dim: 3, ref what } if what.contains("\"s\""))
    );

    let empty = Points::new(vec![], 0, 2).unwrap();
    assert!(matches!(kind_of(&path, scatter(&empty)), PlotErrorKind::Empty { .. }));

    let nan = Points::new(vec![0.0, 0.0, 1.0, f32::NAN], 2, 2).unwrap();
    assert!(matches!(kind_of(&path, scatter(&nan)), PlotErrorKind::NonFinite { row: 1, .. }));

    assert!(matches!(kind_of(&path, plot::scatter(&path, &[], &opts)), PlotErrorKind::Empty { .. }));

    let ok = cluster(4, (0.0, 1.0), (0.0, 1.0));
    let short = cluster(3, (0.0, 1.0), (0.0, 1.0));
    let traj = [ok.clone(), short];
    assert!(matches!(
        kind_of(&path, plot::trajectories(&path, &traj, None, &opts)),
        PlotErrorKind::FrameSize { frame: 1, expected: 4, got: 3 }
    ));
    assert!(matches!(kind_of(&path, plot::trajectories(&path, &[], None, &opts)), PlotErrorKind::Empty { .. }));
    let background = Points::new(vec![0.0; 3], 1, 3).unwrap();
    assert!(matches!(
        kind_of(&path, plot::trajectories(&path, std::slice::from_ref(&ok), Some(&background), &opts)),
        PlotErrorKind::NotTwoD { dim: 3, .. }
    ));

    let times = PlotOptions { frame_times: Some(vec![0.0]), ..small() };
    let gif = dir.path().join("bad.gif");
    assert!(matches!(
        kind_of(&gif, plot::flow_gif(&gif, &[ok.clone(), ok.clone()], &times)),
        PlotErrorKind::Option { name: "frame_times", .. }
    ));
}

#[test]
fn bad_grids_options_and_paths_are_errors() {
    let dir = tmp();
    let path = dir.path().join("bad.png");
    let opts = small();
    let grid = |values: Vec<f64>| Grid { values, nx: 2, ny: 2, x_range: (0.0, 1.0), y_range: (0.0, 1.0) };

    assert!(matches!(
        kind_of(&path, plot::heatmap(&path, &grid(vec![0.0; 3]), None, &opts)),
        PlotErrorKind::GridShape { nx: 2, ny: 2, len: 3 }
    ));
    assert!(matches!(
        kind_of(&path, plot::heatmap(&path, &grid(vec![0.0, 1.0, f64::NAN, 0.0]), None, &opts)),
        PlotErrorKind::GridValue { index: 2, .. }
    ));
    let flat = Grid { x_range: (1.0, 1.0), ..grid(vec![0.0; 4]) };
    assert!(matches!(
        kind_of(&path, plot::heatmap(&path, &flat, None, &opts)),
        PlotErrorKind::Option { name: "grid.x_range", .. }
    ));

    let p = cluster(4, (0.0, 1.0), (0.0, 1.0));
    let layers = [Layer { points: &p, label: "p", color: Rgb::RED }];
    let tiny = PlotOptions { width: 3, ..small() };
    assert!(matches!(
        kind_of(&path, plot::scatter(&path, &layers, &tiny)),
        PlotErrorKind::Option { name: "width", .. }
    ));

    let jpeg = dir.path().join("s.jpg");
    assert!(matches!(kind_of(&jpeg, plot::scatter(&jpeg, &layers, &opts)), PlotErrorKind::Extension { .. }));
    let png_anim = dir.path().join("f.png");
    assert!(matches!(
        kind_of(&png_anim, plot::flow_gif(&png_anim, std::slice::from_ref(&p), &opts)),
        PlotErrorKind::Extension { .. }
    ));

    let unwritable = dir.path().join("no such folder").join("s.png");
    assert!(matches!(kind_of(&unwritable, plot::scatter(&unwritable, &layers, &opts)), PlotErrorKind::Io { .. }));
    assert_eq!(others(dir.path(), &[]), Vec::<PathBuf>::new(), "failed writes leave no files behind");
}
