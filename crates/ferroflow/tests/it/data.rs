//! Data files and worlds through the public API: file round trips, NumPy interoperability (via
//! the `npyz` crate as the peer implementation), error messages, and worlds as point sources.

use std::path::Path;

use ferroflow::data::io::{format_csv, format_npy, parse_csv, parse_npy};
use ferroflow::data::{DataError, PointSource, Points, World, WorldConfig, read_points, write_points};
use ferroflow::rng::seeded;
use npyz::WriterBuilder as _;
use proptest::prelude::*;

/// Values that stress a text round trip: signed zero, subnormals, the extremes, and ordinary
/// values whose shortest decimal forms are long.
fn awkward_points() -> Points {
    let data = vec![
        0.0,
        -0.0,
        f32::MIN_POSITIVE,
        1e-45, // the smallest subnormal
        -3.4028235e38,
        f32::MAX,
        0.1,
        1.0 / 3.0,
        -2.7182817,
        16777217.0,
        1e-7,
        123456.79,
    ];
    Points::new(data, 4, 3).unwrap()
}

fn bits(p: &Points) -> Vec<u32> {
    p.data.iter().map(|v| v.to_bits()).collect()
}

#[test]
fn csv_and_npy_files_round_trip_bit_exact() {
    let dir = tempfile::tempdir().unwrap();
    let p = awkward_points();
    for name in ["a.csv", "a.npy", "b.CSV"] {
        let f = dir.path().join(name);
        write_points(&f, &p).unwrap();
        let r = read_points(&f).unwrap();
        assert_eq!((r.n, r.dim), (p.n, p.dim), "{name}");
        assert_eq!(bits(&r), bits(&p), "{name}");
    }
    // the write is atomic: no temporary files are left beside the targets
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left.len(), 3, "{left:?}");
}

#[test]
fn npy_written_here_is_read_by_npyz() {
    let p = awkward_points();
    let bytes = format_npy(&p);
    let f = npyz::NpyFile::new(&bytes[..]).unwrap();
    assert_eq!(f.shape(), &[4, 3]);
    assert_eq!(f.order(), npyz::Order::C);
    let v: Vec<f32> = f.into_vec().unwrap();
    assert_eq!(v.iter().map(|x| x.to_bits()).collect::<Vec<_>>(), bits(&p));
    // the data starts at a multiple of 64 bytes, as NumPy aligns it
    assert_eq!((bytes.len() - 4 * 12) % 64, 0);
}

#[test]
fn npy_written_by_npyz_in_f64_big_endian_fortran_order_is_read_here() {
    // [[1, 2, 3], [4, 5, 6]] (+ 0.5 to avoid integers), Fortran order: column by column
    let col_major = [1.5f64, 4.5, 2.5, 5.5, 3.5, 6.5];
    let mut buf = Vec::new();
    let dtype = npyz::DType::Plain(">f8".parse::<npyz::TypeStr>().unwrap());
    let mut w = npyz::WriteOptions::<f64>::new()
        .dtype(dtype)
        .shape(&[2, 3])
        .order(npyz::Order::Fortran)
        .writer(&mut buf)
        .begin_nd()
        .unwrap();
    w.extend(col_major).unwrap();
    w.finish().unwrap();
    let p = parse_npy(&buf, Path::new("peer.npy")).unwrap();
    assert_eq!(p, Points::new(vec![1.5, 2.5, 3.5, 4.5, 5.5, 6.5], 2, 3).unwrap());
    // and npyz's default little-endian f32 1-D array is an n×1 point set
    let mut buf = Vec::new();
    let mut w = npyz::WriteOptions::<f32>::new().default_dtype().shape(&[3]).writer(&mut buf).begin_nd().unwrap();
    w.extend([1.0f32, -2.0, 0.25]).unwrap();
    w.finish().unwrap();
    assert_eq!(parse_npy(&buf, Path::new("peer.npy")).unwrap(), Points::new(vec![1.0, -2.0, 0.25], 3, 1).unwrap());
}

#[test]
fn npy_of_integers_is_a_dtype_error_naming_the_type() {
    let mut buf = Vec::new();
    let mut w = npyz::WriteOptions::<i64>::new().default_dtype().shape(&[2, 1]).writer(&mut buf).begin_nd().unwrap();
    w.extend([1i64, 2]).unwrap();
    w.finish().unwrap();
    let e = parse_npy(&buf, Path::new("ints.npy")).unwrap_err();
    assert!(matches!(e, DataError::Dtype { meaning: "signed integer", .. }), "{e}");
    assert_eq!(e.to_string().lines().count(), 1);
    assert!(e.to_string().starts_with("ints.npy: dtype \"<i8\""), "{e}");
}

#[test]
fn file_errors_are_one_line_and_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let txt = dir.path().join("points.txt");
    std::fs::write(&txt, "1,2\n").unwrap();
    let e = read_points(&txt).unwrap_err();
    assert!(matches!(e, DataError::UnknownFormat { .. }), "{e}");
    assert!(e.to_string().contains("points.txt") && e.to_string().contains(".csv or .npy"), "{e}");
    let missing = dir.path().join("nope.csv");
    assert!(matches!(read_points(&missing), Err(DataError::Io { .. })));
    let empty = dir.path().join("empty.npy");
    std::fs::write(&empty, b"").unwrap();
    let e = read_points(&empty).unwrap_err();
    assert_eq!(e.to_string(), format!("{}: the file is empty", empty.display()));
    let ragged = dir.path().join("r.csv");
    std::fs::write(&ragged, "x,y\n1,2\n3,4\n5\n").unwrap();
    assert_eq!(
        read_points(&ragged).unwrap_err().to_string(),
        format!("{}:4: expected 2 columns (as the first row), got 1", ragged.display())
    );
    // a library error converts into ferroflow's Error with the same message
    let wrapped: ferroflow::Error = read_points(&ragged).unwrap_err().into();
    assert!(wrapped.to_string().ends_with(":4: expected 2 columns (as the first row), got 1"));
}

#[test]
fn worlds_are_point_sources_with_their_labels() {
    for w in World::ALL {
        let mut src = w;
        let (p, labels) = src.sample(32, &mut seeded(1));
        assert_eq!((p.n, p.dim, PointSource::dim(&src)), (32, 2, 2));
        assert_eq!(labels.unwrap(), w.sample_labeled(32, &mut seeded(1)).labels, "{w}");
        assert_eq!(PointSource::n_classes(&src), Some(w.n_classes()));
    }
    // a parametrised world is a source too, and its parameters matter
    let mut wide = WorldConfig::Ring { radius: 10.0, std: 0.0 };
    let (p, _) = wide.sample(8, &mut seeded(2));
    for i in 0..8 {
        assert!((p.row(i)[0].hypot(p.row(i)[1]) - 10.0).abs() < 1e-5);
    }
}

/// Finite f32 values from every bit pattern (NaN and ±∞ excluded).
fn finite_f32() -> impl Strategy<Value = f32> {
    any::<u32>().prop_map(f32::from_bits).prop_filter("finite", |v| v.is_finite())
}

fn points() -> impl Strategy<Value = Points> {
    (1usize..12, 1usize..5).prop_flat_map(|(n, dim)| {
        prop::collection::vec(finite_f32(), n * dim).prop_map(move |data| Points::new(data, n, dim).unwrap())
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn any_finite_points_round_trip_through_csv_and_npy(p in points()) {
        let csv = parse_csv(&format_csv(&p), Path::new("p.csv")).unwrap();
        prop_assert_eq!(bits(&csv), bits(&p));
        prop_assert_eq!((csv.n, csv.dim), (p.n, p.dim));
        let npy = parse_npy(&format_npy(&p), Path::new("p.npy")).unwrap();
        prop_assert_eq!(bits(&npy), bits(&p));
        prop_assert_eq!((npy.n, npy.dim), (p.n, p.dim));
    }

    #[test]
    fn truncated_npy_is_an_error_never_a_panic(p in points(), cut in 0usize..10_000) {
        let b = format_npy(&p);
        let cut = cut % b.len();
        prop_assert!(parse_npy(&b[..cut], Path::new("p.npy")).is_err());
    }
}
