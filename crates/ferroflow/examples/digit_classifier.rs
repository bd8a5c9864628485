//! Trains the CNN digit classifier on MNIST at 16×16 and 28×28: expect ≥ 99 % test accuracy at
//! each size and a real-vs-real Fréchet distance (train vs test digits, in its features) of
//! ≈ 2–3 at 2,000 digits (200 a digit), lower at 10,000.
//!
//! ```text
//! cargo run --release --example digit_classifier -- [--data DIR] [--out DIR] [--size 16|28|both]
//!     [--epochs N] [--shift PX] [--seed S] [--load]
//! ```
//! `--load` skips training and evaluates the checkpoints already in `--out`.
//! `--data` defaults to `$FERROFLOW_DATA` (the real files: `../shared/data/mnist`); the checkpoints are written
//! to `--out` (default `.`) as `digit-classifier-16.safetensors` / `digit-classifier-28.safetensors`.

use std::path::PathBuf;
use std::time::Instant;

use ferroflow::backend::{Cpu, CpuAutodiff};
use ferroflow::data::mnist::{ImageSize, Mnist, Split, data_dir};
use ferroflow::metrics::{
    ClassifierTrainConfig, DigitClassifier, balanced_subset, evaluate_digits, frechet_distance, train_classifier,
};
use ferroflow::rng::seeded;
use rand::seq::SliceRandom as _;

struct Args {
    data: Option<PathBuf>,
    out: PathBuf,
    sizes: Vec<ImageSize>,
    epochs: usize,
    shift: usize,
    seed: u64,
    load: bool,
}

fn parse_args() -> Result<Args, Box<dyn std::error::Error>> {
    let mut a = Args {
        data: None,
        out: ".".into(),
        sizes: vec![ImageSize::Down16, ImageSize::Full28],
        epochs: 3,
        shift: 1,
        seed: 0,
        load: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--data" => a.data = Some(value()?.into()),
            "--out" => a.out = value()?.into(),
            "--size" => {
                let v = value()?;
                a.sizes = if v == "both" { a.sizes.clone() } else { vec![v.parse()?] };
            }
            "--epochs" => a.epochs = value()?.parse()?,
            "--shift" => a.shift = value()?.parse()?,
            "--seed" => a.seed = value()?.parse()?,
            "--load" => a.load = true,
            _ => return Err(format!("unknown flag {flag:?}; see the file's header").into()),
        }
    }
    Ok(a)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    let dir = data_dir(args.data.as_deref())?;
    std::fs::create_dir_all(&args.out).map_err(|e| format!("creating {}: {e}", args.out.display()))?;
    let device = Default::default();
    for size in &args.sizes {
        let side = size.side();
        let px = side * side;
        let train = Mnist::load(&dir, Split::Train, *size)?;
        let test = Mnist::load(&dir, Split::Test, *size)?;
        let (train_x, test_x) = (train.points().data, test.points().data);
        let config =
            ClassifierTrainConfig { epochs: args.epochs, max_shift: args.shift, seed: args.seed, ..Default::default() };
        let path = args.out.join(format!("digit-classifier-{side}.safetensors"));
        let mut train_s = f64::NAN;
        if !args.load {
            println!("{side}×{side}: training on {} digits, {config:?}", train.n);
            let start = Instant::now();
            let clf = train_classifier::<CpuAutodiff>(
                &train_x,
                &train.labels,
                train.n,
                side,
                side,
                &config,
                &device,
                &mut |e| {
                    println!(
                        "  epoch {}: loss {:.4}, train accuracy {:.4} (shifted), {:.0} s",
                        e.epoch, e.loss, e.train_accuracy, e.seconds
                    )
                },
            )?;
            train_s = start.elapsed().as_secs_f64();
            clf.save(&path)?;
        }
        let clf = DigitClassifier::<Cpu>::load(&path, side, side, &device)?;
        let acc = clf.accuracy(&test_x, &test.labels)?;

        // FD real vs real at 2,000: 200 random digits of each class from train and from test.
        let mut rng = seeded(args.seed + 1);
        let (test_2k, test_2k_labels) = balanced_subset(&test_x, &test.labels, px, 200, &mut rng)?;
        let (train_2k, _) = balanced_subset(&train_x, &train.labels, px, 200, &mut rng)?;
        let r = evaluate_digits(&clf, &test_2k, &test_2k_labels, &test_2k, &train_2k)?;
        // At 10,000: the whole test set vs 10,000 random training digits (MNIST's own mix).
        let d = clf.config.d_features;
        let start_fd = Instant::now();
        let mut pick: Vec<usize> = (0..train.n).collect();
        pick.shuffle(&mut rng);
        let train_10k: Vec<f32> =
            pick[..10_000].iter().flat_map(|&i| &train_x[i * px..(i + 1) * px]).copied().collect();
        let fd_10k = frechet_distance(&clf.features(&train_10k)?, &clf.features(&test_x)?, d)?;
        let fd_10k_s = start_fd.elapsed().as_secs_f64();
        // The biased "first 200 of each digit" subsets, for comparison (see `balanced_subset`).
        let first = |x: &[f32], labels: &[u32]| {
            let mut out = Vec::new();
            for c in 0..10 {
                labels
                    .iter()
                    .enumerate()
                    .filter(|&(_, &l)| l == c)
                    .take(200)
                    .for_each(|(i, _)| out.extend_from_slice(&x[i * px..(i + 1) * px]));
            }
            out
        };
        let fd_first = frechet_distance(
            &clf.features(&first(&train_x, &train.labels))?,
            &clf.features(&first(&test_x, &test.labels))?,
            d,
        )?;
        let how = if args.load { "loaded".to_string() } else { format!("trained in {train_s:.0} s") };
        println!("{side}×{side}: {how}; test accuracy {:.2} % ({} digits)", 100.0 * acc, test.n);
        println!(
            "{side}×{side}: FD real(train) vs real(test): {:.3} at 2,000 (200 a digit), {fd_10k:.3} at 10,000 ({fd_10k_s:.1} s)",
            r.fd_real
        );
        println!("{side}×{side}: FD at 2,000 with the first 200 of each digit instead of random ones: {fd_first:.3}");
        println!(
            "{side}×{side}: per-digit accuracy on the 2,000: {:?}",
            r.per_class_accuracy.map(|a| (a * 1000.0).round() / 10.0)
        );
        println!("{side}×{side}: checkpoint {}", path.display());
    }
    Ok(())
}
