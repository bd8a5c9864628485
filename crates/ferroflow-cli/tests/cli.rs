//! The command line: help texts (snapshots), a corpus of bad inputs that must each give a
//! one-line error and exit status 2 (never a panic), and small end-to-end runs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn ferroflow(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferroflow")).args(args).current_dir(dir).output().expect("runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Replaces the temporary folder in messages so snapshots are stable.
fn scrub(s: &str, dir: &Path) -> String {
    s.replace(&dir.display().to_string(), "[TMP]")
}

#[test]
fn help_texts() {
    let dir = tempfile::tempdir().unwrap();
    for cmd in [
        &["--help"][..],
        &["train", "--help"],
        &["sample", "--help"],
        &["eval", "--help"],
        &["plot", "--help"],
        &["bench", "--help"],
        &["nll", "--help"],
        &["serve", "--help"],
        &["classifier", "--help"],
    ] {
        let o = ferroflow(cmd, dir.path());
        assert!(o.status.success(), "{cmd:?}");
        let name = format!("help_{}", cmd[0].trim_start_matches('-'));
        insta::assert_snapshot!(name, String::from_utf8_lossy(&o.stdout));
    }
}

struct Case {
    name: &'static str,
    file: &'static str,
    bytes: Vec<u8>,
    args: Vec<&'static str>,
}

fn npy(descr: &str, shape: &str, payload: &[u8]) -> Vec<u8> {
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut b = b"\x93NUMPY\x01\x00".to_vec();
    b.extend_from_slice(&(header.len() as u16).to_le_bytes());
    b.extend_from_slice(header.as_bytes());
    b.extend_from_slice(payload);
    b
}

fn f32s(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// A valid checkpoint of a tiny model, written by the CLI itself.
fn tiny_checkpoint(dir: &Path) -> PathBuf {
    let o = ferroflow(
        &[
            "train",
            "--world",
            "moons",
            "--steps",
            "3",
            "--hidden",
            "8",
            "--layers",
            "1",
            "--samples",
            "0",
            "-q",
            "-o",
            "tiny",
        ],
        dir,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    dir.join("tiny/model.safetensors")
}

#[test]
fn bad_inputs_give_one_line_errors_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let good_ckpt = std::fs::read(tiny_checkpoint(d)).unwrap();
    let header_len = u64::from_le_bytes(good_ckpt[..8].try_into().unwrap()) as usize;
    let mut wrong_dtype = good_ckpt.clone();
    {
        // Rewrite the first "F32" in the header as "F16": same length, different dtype.
        let h = &mut wrong_dtype[8..8 + header_len];
        let pos = h.windows(3).position(|w| w == b"F32").unwrap();
        h[pos..pos + 3].copy_from_slice(b"F16");
    }
    // A well-formed F16 tensor (the same bytes read as twice as many halves): the reader's own
    // dtype check, not safetensors' offset check, must refuse it.
    let well_formed_f16 = {
        let mut header: serde_json::Value = serde_json::from_slice(&good_ckpt[8..8 + header_len]).unwrap();
        let t = &mut header["net.0.weight"];
        t["dtype"] = "F16".into();
        let last = t["shape"].as_array().unwrap().len() - 1;
        t["shape"][last] = (t["shape"][last].as_u64().unwrap() * 2).into();
        let mut h = serde_json::to_vec(&header).unwrap();
        h.resize(h.len().div_ceil(8) * 8, b' ');
        let mut f = (h.len() as u64).to_le_bytes().to_vec();
        f.extend_from_slice(&h);
        f.extend_from_slice(&good_ckpt[8 + header_len..]);
        f
    };
    let nan_weight = {
        let header: serde_json::Value = serde_json::from_slice(&good_ckpt[8..8 + header_len]).unwrap();
        let start = 8 + header_len + header["net.0.weight"]["data_offsets"][0].as_u64().unwrap() as usize;
        let mut f = good_ckpt.clone();
        f[start..start + 4].copy_from_slice(&f32::NAN.to_le_bytes());
        f
    };
    let mut renamed = good_ckpt.clone();
    {
        let h = &mut renamed[8..8 + header_len];
        let pos = h.windows(12).position(|w| w == b"net.0.weight").unwrap();
        h[pos..pos + 3].copy_from_slice(b"xet");
    }
    let eval = |f: &'static str| vec!["eval", f, "--world", "moons"];
    let sample = |f: &'static str| vec!["sample", "--ckpt", f, "-o", "s.csv"];
    let train_cfg = |f: &'static str| vec!["train", "-c", f, "--steps", "1", "-q", "-o", "cfgrun"];
    let cases = vec![
        Case { name: "csv empty", file: "empty.csv", bytes: vec![], args: eval("empty.csv") },
        Case {
            name: "sample --clip-x1 on a point model",
            file: "points.safetensors",
            bytes: good_ckpt.clone(),
            args: vec!["sample", "--ckpt", "points.safetensors", "--clip-x1", "-o", "s.csv"],
        },
        Case { name: "csv ragged", file: "ragged.csv", bytes: b"1,2\n3,4\n5\n".to_vec(), args: eval("ragged.csv") },
        Case { name: "csv not a number", file: "text.csv", bytes: b"1,2\n3,abc\n".to_vec(), args: eval("text.csv") },
        Case { name: "csv NaN", file: "nan.csv", bytes: b"1,2\nNaN,4\n".to_vec(), args: eval("nan.csv") },
        Case { name: "csv wrong dimension", file: "d3.csv", bytes: b"1,2,3\n4,5,6\n".to_vec(), args: eval("d3.csv") },
        Case { name: "npy int dtype", file: "int.npy", bytes: npy("<i4", "(2, 2)", &[0; 16]), args: eval("int.npy") },
        Case {
            name: "npy truncated",
            file: "short.npy",
            bytes: npy("<f4", "(4, 2)", &f32s(&[1.0; 5])),
            args: eval("short.npy"),
        },
        Case {
            name: "npy huge shape",
            file: "huge.npy",
            bytes: npy("<f4", "(1000000000000, 2)", &f32s(&[1.0; 4])),
            args: eval("huge.npy"),
        },
        Case {
            name: "npy rank 3",
            file: "r3.npy",
            bytes: npy("<f4", "(1, 2, 2)", &f32s(&[1.0; 4])),
            args: eval("r3.npy"),
        },
        Case { name: "npy garbage", file: "junk.npy", bytes: b"not numpy at all".to_vec(), args: eval("junk.npy") },
        Case { name: "npy empty file", file: "zero.npy", bytes: vec![], args: eval("zero.npy") },
        Case {
            name: "npy NaN",
            file: "nan.npy",
            bytes: npy("<f4", "(2, 2)", &f32s(&[1.0, f32::NAN, 0.0, 2.0])),
            args: eval("nan.npy"),
        },
        Case {
            name: "train on npy with NaN",
            file: "nan-data.npy",
            bytes: npy("<f4", "(2, 2)", &f32s(&[1.0, f32::NAN, 0.0, 2.0])),
            args: vec!["train", "--data", "nan-data.npy", "--steps", "1", "-q", "-o", "nanrun"],
        },
        Case { name: "data missing", file: "unused.txt", bytes: vec![], args: eval("nowhere.csv") },
        Case {
            name: "unknown world",
            file: "s.csv",
            bytes: b"1,2\n".to_vec(),
            args: vec!["eval", "s.csv", "--world", "mooons"],
        },
        Case {
            name: "toml syntax",
            file: "syntax.toml",
            bytes: b"[train\nsteps = 3\n".to_vec(),
            args: train_cfg("syntax.toml"),
        },
        Case {
            name: "toml unknown key",
            file: "unk.toml",
            bytes: b"[train]\nstepz = 3\n".to_vec(),
            args: train_cfg("unk.toml"),
        },
        Case {
            name: "toml bad value",
            file: "neg.toml",
            bytes: b"[train]\nlr = -1.0\n".to_vec(),
            args: train_cfg("neg.toml"),
        },
        Case {
            name: "toml nan",
            file: "nan.toml",
            bytes: b"[train]\nlr = nan\n".to_vec(),
            args: train_cfg("nan.toml"),
        },
        Case {
            name: "toml wrong type",
            file: "type.toml",
            bytes: b"[train]\nsteps = \"many\"\n".to_vec(),
            args: train_cfg("type.toml"),
        },
        Case {
            name: "toml huge model",
            file: "big.toml",
            bytes: b"[model]\nd_hidden = 100000000\n".to_vec(),
            args: train_cfg("big.toml"),
        },
        Case { name: "ckpt empty", file: "empty.safetensors", bytes: vec![], args: sample("empty.safetensors") },
        Case {
            name: "ckpt truncated",
            file: "cut.safetensors",
            bytes: good_ckpt[..good_ckpt.len() / 2].to_vec(),
            args: sample("cut.safetensors"),
        },
        Case { name: "ckpt wrong dtype", file: "f16.safetensors", bytes: wrong_dtype, args: sample("f16.safetensors") },
        Case { name: "ckpt NaN weight", file: "nanw.safetensors", bytes: nan_weight, args: sample("nanw.safetensors") },
        Case {
            name: "ckpt f16 tensor",
            file: "half.safetensors",
            bytes: well_formed_f16,
            args: sample("half.safetensors"),
        },
        Case {
            name: "ckpt missing tensor",
            file: "renamed.safetensors",
            bytes: renamed,
            args: sample("renamed.safetensors"),
        },
        Case {
            name: "ckpt not safetensors",
            file: "junk.safetensors",
            bytes: vec![0xff; 64],
            args: sample("junk.safetensors"),
        },
        Case {
            name: "bad flag value",
            file: "unused2.txt",
            bytes: vec![],
            args: vec!["train", "--coupling", "greedy", "-q"],
        },
        Case {
            name: "bad solver",
            file: "unused3.txt",
            bytes: vec![],
            args: vec!["sample", "--ckpt", "tiny/model.safetensors", "--solver", "rk5", "-o", "x.csv"],
        },
        Case {
            name: "sample too many points",
            file: "unused6.txt",
            bytes: vec![],
            args: vec!["sample", "--ckpt", "tiny/model.safetensors", "-n", "4000000000", "-o", "x.npy"],
        },
        Case {
            name: "eval over 20,000 points",
            file: "many.csv",
            bytes: "0.5,0.25\n".repeat(20_001).into_bytes(),
            args: eval("many.csv"),
        },
        Case {
            name: "bench rounds 0",
            file: "unused4.txt",
            bytes: vec![],
            args: vec!["bench", "w2d", "--rounds", "0"],
        },
        Case {
            name: "zero time budget",
            file: "unused5.txt",
            bytes: vec![],
            args: vec!["train", "--minutes", "0", "-q"],
        },
    ];
    let mut report = String::new();
    for c in &cases {
        std::fs::write(d.join(c.file), &c.bytes).unwrap();
        let o = ferroflow(&c.args, d);
        let err = scrub(&stderr(&o), d);
        assert_eq!(o.status.code(), Some(2), "{}: exit {:?}, stderr {err}", c.name, o.status.code());
        assert!(!err.contains("panicked"), "{}: {err}", c.name);
        let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{}: expected one line, got {err:?}", c.name);
        assert!(lines[0].starts_with("error: "), "{}: {err}", c.name);
        report.push_str(&format!("{:<24} {}\n", c.name, lines[0]));
    }
    insta::assert_snapshot!("bad_inputs", report);
}

#[test]
fn train_sample_eval_plot_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let o = ferroflow(
        &["train", "--world", "8gaussians", "--steps", "400", "--hidden", "64", "--samples", "500", "-q", "-o", "run"],
        d,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    for f in ["model.safetensors", "config.toml", "samples.csv", "samples.png", "eval.json", "loss.csv"] {
        assert!(d.join("run").join(f).is_file(), "missing {f}");
    }
    // The resolved config reruns as it is.
    let cfg = std::fs::read_to_string(d.join("run/config.toml")).unwrap();
    assert!(cfg.contains("8gaussians"), "{cfg}");
    // Same noise, two solvers: sample from given source points.
    std::fs::write(d.join("x0.csv"), "0,0\n1,-1\n-0.5,2\n").unwrap();
    for solver in ["euler", "rk4", "dopri5"] {
        let out = format!("s_{solver}.csv");
        let o = ferroflow(
            &["sample", "--ckpt", "run/model.safetensors", "--x0", "x0.csv", "--solver", solver, "-o", &out],
            d,
        );
        assert!(o.status.success(), "{solver}: {}", stderr(&o));
        let text = std::fs::read_to_string(d.join(&out)).unwrap();
        assert_eq!(text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()).count(), 3, "{text}");
    }
    // bf16 products where the CPU has AVX512-BF16: the same samples to ≈ 10⁻³ of their
    // scale, and the .toml says which precision was in force (f32 elsewhere, bit for bit).
    let points = |f: &str| -> Vec<f64> {
        let text = std::fs::read_to_string(d.join(f)).unwrap();
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .flat_map(|l| l.split(',').map(|v| v.trim().parse::<f64>().unwrap()).collect::<Vec<_>>())
            .collect()
    };
    for (p, out) in [("f32", "p32.csv"), ("bf16", "p16.csv")] {
        let args =
            ["sample", "--ckpt", "run/model.safetensors", "-n", "500", "--steps", "20", "--precision", p, "-o", out];
        let o = ferroflow(&args, d);
        assert!(o.status.success(), "{p}: {}", stderr(&o));
    }
    let (a, b) = (points("p32.csv"), points("p16.csv"));
    assert_eq!((a.len(), b.len()), (1000, 1000));
    let worst = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
    let toml = std::fs::read_to_string(d.join("p16.toml")).unwrap();
    if toml.contains("precision = \"bf16\"") {
        assert!(worst > 0.0 && worst < 0.05, "bf16 against f32: worst {worst}");
    } else {
        assert!(toml.contains("precision = \"f32\""), "{toml}");
        assert_eq!(worst, 0.0, "f32 in force: the same samples");
    }
    let o = ferroflow(
        &["sample", "--ckpt", "run/model.safetensors", "--solver", "dopri5", "--precision", "bf16", "-o", "x.csv"],
        d,
    );
    assert!(!o.status.success() && stderr(&o).contains("fixed-step and SDE samplers"), "{}", stderr(&o));
    let o = ferroflow(&["sample", "--ckpt", "run/model.safetensors", "-n", "1000", "-o", "s.npy"], d);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = ferroflow(&["eval", "s.npy", "--world", "8gaussians", "--seeds", "2", "--json"], d);
    assert!(o.status.success(), "{}", stderr(&o));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for k in ["n", "w2", "floor", "ratio", "mmd"] {
        assert!(j.get(k).is_some(), "{k} missing in {j}");
    }
    assert_eq!(j["n"], 1000);
    // 400 steps of a small MLP already place mass near the 8 modes: W2 well below the
    // spread of the source (W2(N(0,I), 8gaussians) ≈ 4).
    assert!(j["w2"].as_f64().unwrap() < 2.0, "{j}");
    // With a data file of the same size, W2 is exact and there is no floor.
    let o = ferroflow(&["eval", "s.npy", "--data", "s.npy", "--json"], d);
    assert!(o.status.success(), "{}", stderr(&o));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["w2"].as_f64().unwrap(), 0.0, "{j}");
    assert!(j["floor"].is_null(), "{j}");
    for (kind, out) in [("scatter", "p.png"), ("trajectories", "t.png"), ("gif", "f.gif")] {
        let o = ferroflow(
            &[
                "plot",
                "--ckpt",
                "run/model.safetensors",
                "--kind",
                kind,
                "-n",
                "200",
                "--steps",
                "10",
                "--world",
                "8gaussians",
                "-o",
                out,
            ],
            d,
        );
        assert!(o.status.success(), "{kind}: {}", stderr(&o));
        assert!(std::fs::metadata(d.join(out)).unwrap().len() > 1000, "{kind}");
    }
}

#[test]
fn nll_agrees_across_solvers_and_estimators() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ckpt = tiny_checkpoint(d);
    let ckpt = ckpt.to_str().unwrap();
    let pts: String =
        (0..200).map(|i| format!("{},{}\n", (i % 20) as f32 / 5.0 - 2.0, (i / 20) as f32 / 5.0 - 1.0)).collect();
    std::fs::write(d.join("pts.csv"), pts).unwrap();
    let nll = |extra: &[&str]| -> serde_json::Value {
        let mut args = vec!["nll", "--ckpt", ckpt, "--data", "pts.csv", "--json"];
        args.extend_from_slice(extra);
        let o = ferroflow(&args, d);
        assert!(o.status.success(), "{extra:?}: {}", stderr(&o));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let dopri = nll(&[]);
    for k in ["n", "dim", "nll", "nll_se", "bits_per_dim", "bits_per_dim_se", "nfe"] {
        assert!(dopri.get(k).is_some(), "{k} missing in {dopri}");
    }
    assert_eq!(dopri["n"], 200);
    let f = |j: &serde_json::Value, k: &str| j[k].as_f64().unwrap();
    // bits/dim = nll / (D ln 2) with D = 2.
    assert!((f(&dopri, "bits_per_dim") - f(&dopri, "nll") / (2.0 * std::f64::consts::LN_2)).abs() < 1e-9);
    // RK4 with 50 steps and Dopri5 at 1e-5 solve the same ODE: the mean NLL agrees to ≪ 1e-3.
    let rk4 = nll(&["--solver", "rk4", "--steps", "50"]);
    assert!((f(&rk4, "nll") - f(&dopri, "nll")).abs() < 1e-3, "{rk4} vs {dopri}");
    assert_eq!(rk4["nfe"], 200);
    // Hutchinson is unbiased: 4 probes' mean NLL is within a few standard errors of the exact
    // one (the per-point spread of the NLL bounds the estimator noise from above here).
    let h = nll(&["--hutchinson", "4", "--seed", "3"]);
    assert!((f(&h, "nll") - f(&dopri, "nll")).abs() < 4.0 * f(&h, "nll_se"), "{h} vs {dopri}");
    // Bad input: one-line error, exit 2.
    let o = ferroflow(&["nll", "--ckpt", ckpt, "--data", "pts.csv", "--hutchinson", "0"], d);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(stderr(&o).trim(), "error: hutchinson.probes = 0 is out of range: 1..=4096");
}

#[test]
fn plot_density_writes_a_heat_map_of_the_model_density() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ckpt = tiny_checkpoint(d);
    let ckpt = ckpt.to_str().unwrap();
    let args = ["plot", "--kind", "density", "--ckpt", ckpt, "--world", "moons", "-n", "200"];
    let o = ferroflow(&[&args[..], &["--grid", "24", "--solver", "rk4", "--steps", "4", "-o", "d.png"]].concat(), d);
    assert!(o.status.success(), "{}", stderr(&o));
    let file = std::fs::File::open(d.join("d.png")).unwrap();
    let mut reader = png::Decoder::new(std::io::BufReader::new(file)).read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    // One 640 × 600 plot plus the 96-pixel colour bar.
    assert_eq!((info.width, info.height), (640 + 96, 600));
    let px = info.color_type.samples();
    let colours: std::collections::HashSet<&[u8]> = buf[..info.buffer_size()].chunks(px).collect();
    // A heat map of 24² cells and a 256-step colour bar: far more than the ~10 colours of the
    // axes and the overlay alone.
    assert!(colours.len() > 100, "{} colours", colours.len());
    let err = stderr(&o);
    let mass: f64 = err
        .split("∫p over the grid = ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no mass in {err}"));
    // The grid covers the samples with a 15 % margin: most of a density's mass, never more
    // than all of it (a wrong cell area or sign of the divergence misses this by far). The
    // slack above 1 covers 24² cells and 4 RK4 steps (the library test checks ≈ 1 tightly).
    assert!(mass > 0.5 && mass < 1.1, "∫p = {mass}");
    let o = ferroflow(&[&args[..], &["--grid", "1", "-o", "e.png"]].concat(), d);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(stderr(&o).trim(), "error: --grid 1 is out of range: 2..=1024 cells per axis");
}

#[cfg(unix)]
#[test]
fn sigkill_while_checkpointing_leaves_a_loadable_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A checkpoint every step, so most kills land while a checkpoint is being written.
    for (round, delay_ms) in [350u64, 520, 700, 910].into_iter().enumerate() {
        let out = format!("k{round}");
        let mut child = Command::new(env!("CARGO_BIN_EXE_ferroflow"))
            .args([
                "train",
                "--steps",
                "1000000",
                "--checkpoint-every",
                "1",
                "--hidden",
                "128",
                "--samples",
                "0",
                "-q",
                "-o",
                &out,
            ])
            .current_dir(d)
            .spawn()
            .unwrap();
        let ckpt = d.join(&out).join("model.safetensors");
        let t0 = std::time::Instant::now();
        while !ckpt.exists() && t0.elapsed().as_secs() < 60 {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let o = ferroflow(&["sample", "--ckpt", &format!("{out}/model.safetensors"), "-n", "10", "-o", "s.csv"], d);
        assert!(o.status.success(), "round {round}: {}", stderr(&o));
    }
}

fn mnist_fixture() -> String {
    format!("{}/../ferroflow/tests/fixtures/mnist", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn digits_train_resume_and_sample_a_guided_grid() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = mnist_fixture();
    // A tiny U-Net for 3 steps, then resumed to 5; and the MLP on the fused engine.
    let unet = ["train", "--mnist", &data, "--field", "unet", "--channels", "8", "--batch-size", "16", "-q"];
    let shape = ["--channel-mult", "1,2", "--res-blocks", "2", "--no-attention"];
    let o = ferroflow(&[&unet[..], &shape, &["--steps", "3", "--samples", "0", "-o", "u"]].concat(), d);
    assert!(o.status.success(), "{}", stderr(&o));
    let cfg = std::fs::read_to_string(d.join("u/config.toml")).unwrap();
    assert!(cfg.contains("field = \"unet\"") && cfg.contains("base_channels = 8"), "{cfg}");
    let compact: String = cfg.split_whitespace().collect();
    assert!(compact.contains("channel_mult=[1,2,]res_blocks=2") && compact.contains("attention=false"), "{cfg}");
    let o = ferroflow(&["train", "--resume", "u/model.safetensors", "--steps", "5", "-q", "-o", "u"], d);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(d.join("u/loss.csv")).unwrap().lines().last().unwrap().split(',').next(),
        Some("5")
    );
    assert!(d.join("u/grid_w0.png").is_file() && d.join("u/grid_w2.png").is_file());
    let o = ferroflow(
        &[
            "train",
            "--mnist",
            &data,
            "--field",
            "mlp",
            "--hidden",
            "32",
            "--steps",
            "4",
            "--samples",
            "0",
            "-q",
            "-o",
            "m",
        ],
        d,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    // Test-set bits/dim of both models (dequantised, the null class).
    for ck in ["u/model.safetensors", "m/model.safetensors"] {
        let args = ["nll", "--ckpt", ck, "--mnist", &data, "-n", "4", "--solver", "euler", "--steps", "2", "--json"];
        let o = ferroflow(&args, d);
        assert!(o.status.success(), "{ck}: {}", stderr(&o));
        let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        // Untrained fields are close to N(0, I) on 256-pixel images: a few bits a pixel, finite.
        let bpd = j["bits_per_dim"].as_f64().unwrap();
        assert!(bpd.is_finite() && (1.0..20.0).contains(&bpd), "{ck}: {j}");
        assert_eq!((j["n"].as_u64(), j["dim"].as_u64()), (Some(4), Some(256)), "{j}");
    }
    for (ck, w) in [("u/model.safetensors", "1"), ("m/model.safetensors", "2")] {
        let o = ferroflow(&["sample", "--ckpt", ck, "-n", "20", "--cfg", w, "--steps", "4", "-o", "g.png"], d);
        assert!(o.status.success(), "{ck}: {}", stderr(&o));
        let (images, n, h, w) = ferroflow::data::images_io::read_images_npy(&d.join("g.npy")).unwrap();
        assert_eq!((n, h, w, images.len()), (20, 16, 16, 20 * 256), "{ck}");
        // Rows are digits: 20 digits in 10 rows of 2.
        let labels = ferroflow::data::images_io::read_labels_npy(&d.join("g_labels.npy")).unwrap();
        assert_eq!(labels, (0..20).map(|i| i / 2).collect::<Vec<u32>>(), "{ck}");
        // 10 rows of 2 tiles of 16·4 px with 4-px separators.
        let png = std::fs::read(d.join("g.png")).unwrap();
        let (pw, ph) =
            (u32::from_be_bytes(png[16..20].try_into().unwrap()), u32::from_be_bytes(png[20..24].try_into().unwrap()));
        assert_eq!((pw, ph), (2 * 64 + 3 * 4, 10 * 64 + 11 * 4), "{ck}");
    }
    // The x₁-clipped sampler: same labels, every image written.
    let o = ferroflow(
        &["sample", "--ckpt", "m/model.safetensors", "-n", "20", "--clip-x1", "--steps", "4", "-o", "c.npy"],
        d,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let (images, n, _, _) = ferroflow::data::images_io::read_images_npy(&d.join("c.npy")).unwrap();
    assert_eq!((n, images.len()), (20, 20 * 256));
}

#[test]
fn digits_config_defaults_then_the_classifier_scores_conditional_one_class_and_unconditional_samples() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = mnist_fixture();
    // A partial config: what it leaves out takes the digits defaults, not the 2-D ones.
    let partial = "field = \"mlp\"\n[mlp]\nd_hidden = 32\nn_hidden = 1\n[train]\nsteps = 2\nbatch_size = 16\n";
    std::fs::write(d.join("partial.toml"), partial).unwrap();
    let o = ferroflow(&["train", "--mnist", &data, "-c", "partial.toml", "--samples", "0", "-q", "-o", "m"], d);
    assert!(o.status.success(), "{}", stderr(&o));
    let cfg = std::fs::read_to_string(d.join("m/config.toml")).unwrap();
    for line in ["label_dropout = 0.1", "ema_decay = 0.999", "warmup_steps = 100", "batch_size = 16", "d_hidden = 32"] {
        assert!(cfg.lines().any(|l| l == line), "{line} missing from\n{cfg}");
    }
    let o = ferroflow(&["classifier", "--mnist", &data, "--epochs", "1", "-o", "clf.safetensors"], d);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("real-vs-real FD at"), "{}", stderr(&o));
    let score = |file: &str| -> serde_json::Value {
        let o = ferroflow(&["eval", file, "--classifier", "clf.safetensors", "--mnist", &data, "--json"], d);
        assert!(o.status.success(), "{file}: {}", stderr(&o));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let sample = |extra: &[&str], out: &str| {
        let args = [&["sample", "--ckpt", "m/model.safetensors", "--steps", "2", "-o", out][..], extra].concat();
        let o = ferroflow(&args, d);
        assert!(o.status.success(), "{out}: {}", stderr(&o));
    };
    // Digits 0-9, two each.
    sample(&["-n", "20"], "all.npy");
    let r = score("all.npy");
    assert_eq!(r["n"], 20, "{r}");
    assert!((0.0..=1.0).contains(&r["accuracy"].as_f64().unwrap()) && r["fd"].as_f64().unwrap().is_finite(), "{r}");
    // One digit: the real sets are all 3s, and only 3 has an accuracy.
    sample(&["-n", "6", "--class", "3"], "three.npy");
    let r = score("three.npy");
    assert_eq!(r["n"], 6, "{r}");
    let per_class = r["per_class_accuracy"].as_array().unwrap();
    assert!(per_class[3].is_f64() && per_class.iter().enumerate().all(|(c, v)| c == 3 || v.is_null()), "{r}");
    // No class: FD against random digits and the share of each digit read.
    sample(&["-n", "12", "--uncond"], "free.npy");
    let r = score("free.npy");
    assert_eq!(r["n"], 12, "{r}");
    let shares: Vec<f64> = r["class_fraction"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    assert!((shares.iter().sum::<f64>() - 1.0).abs() < 1e-12 && r["fd"].as_f64().unwrap().is_finite(), "{r}");
    // Conditional images with unconditional labels: a one-line error.
    let o = ferroflow(
        &["eval", "all.npy", "--labels", "free_labels.npy", "--classifier", "clf.safetensors", "--mnist", &data],
        d,
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("12 labels for 20 images"), "{}", stderr(&o));
}

/// A plain HTTP/1.1 request to the explorer (no client library): status and body.
fn http(addr: &str, method: &str, path: &str, body: &str) -> (u16, Vec<u8>) {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("a header");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status = head[9..12].parse().unwrap();
    assert!(!head.to_ascii_lowercase().contains("transfer-encoding: chunked"), "{head}");
    (status, raw[split + 4..].to_vec())
}

fn json_of(b: &[u8]) -> serde_json::Value {
    serde_json::from_slice(b).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(b)))
}

/// Starts `ferroflow serve --port 0 …` and reads the address from its one line.
fn start_server(dir: &Path, extra: &[&str]) -> (std::process::Child, String) {
    use std::io::BufRead as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferroflow"))
        .args(["serve", "--port", "0"])
        .args(extra)
        .current_dir(dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr = line
        .strip_prefix("ferroflow explorer: http://")
        .and_then(|r| r.trim_end().strip_suffix('/'))
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    (child, addr)
}

#[test]
fn serve_prints_its_address_its_checkpoint_samples_like_ferroflow_sample_and_ctrl_c_stops_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (mut server, addr) = start_server(d, &[]);
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    let (s, v) = http(&addr, "POST", "/api/sessions", r#"{"width": 32, "depth": 1, "steps": 150, "seed": 5}"#);
    assert_eq!(s, 201);
    let id = json_of(&v)["id"].as_str().unwrap().to_string();
    assert_eq!(http(&addr, "POST", &format!("/api/sessions/{id}/start"), "").0, 200);
    let t0 = std::time::Instant::now();
    loop {
        let st = json_of(&http(&addr, "GET", &format!("/api/sessions/{id}/status"), "").1);
        if st["state"] == "done" && st["snapshot_step"] == 150 {
            break;
        }
        assert!(t0.elapsed().as_secs() < 30, "{st}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let (_, x0) = http(&addr, "GET", &format!("/api/sessions/{id}/samples.csv?t=0"), "");
    let (_, x1) = http(&addr, "GET", &format!("/api/sessions/{id}/samples.csv"), "");
    let (s, ck) = http(&addr, "GET", &format!("/api/sessions/{id}/checkpoint"), "");
    assert_eq!(s, 200);
    std::fs::write(d.join("x0.csv"), &x0).unwrap();
    std::fs::write(d.join("model.safetensors"), &ck).unwrap();
    // The page samples with Euler, 32 evaluations by default.
    let o = ferroflow(
        &[
            "sample",
            "--ckpt",
            "model.safetensors",
            "--x0",
            "x0.csv",
            "--solver",
            "euler",
            "--steps",
            "32",
            "-o",
            "cli.csv",
        ],
        d,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let read = |b: &[u8]| ferroflow::data::io::parse_csv(b, Path::new("x.csv")).unwrap();
    let (page, cli) = (read(&x1), read(&std::fs::read(d.join("cli.csv")).unwrap()));
    assert_eq!((page.n, cli.n), (2000, 2000));
    let worst = page.data.iter().zip(&cli.data).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    // Same weights, same Euler stages: only f32 rounding (≪ 1e-4 at coordinates ≈ 3).
    assert!(worst < 1e-4, "largest difference {worst}");

    // A taken port: one line, exit 2.
    let port = addr.rsplit(':').next().unwrap();
    let o = ferroflow(&["serve", "--port", port], d);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(e.starts_with(&format!("error: cannot listen on 127.0.0.1:{port}: ")), "{e}");

    // Ctrl-C (SIGINT) stops it cleanly.
    let k = Command::new("kill").args(["-INT", &server.id().to_string()]).status().unwrap();
    assert!(k.success());
    let status = server.wait().unwrap();
    assert!(status.success(), "{status:?}");

    // --ckpt opens that model: a session with its settings and step.
    let (mut server, addr) = start_server(d, &["--ckpt", "model.safetensors"]);
    let (s, v) = http(&addr, "POST", "/api/sessions?ckpt=1", "");
    assert_eq!(s, 201, "{}", String::from_utf8_lossy(&v));
    let st = &json_of(&v)["status"];
    assert_eq!((st["step"].as_u64(), st["settings"]["width"].as_u64()), (Some(150), Some(32)));
    server.kill().unwrap();
    server.wait().unwrap();
}
