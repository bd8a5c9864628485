//! `ferroflow classifier`: trains the digit classifier whose features score generated digits.

use std::time::Instant;

use anyhow::{Context as _, Result};
use ferroflow::data::mnist::{ImageSize, Mnist, Split, data_dir};
use ferroflow::metrics::classifier::{ClassifierTrainConfig, train_classifier};
use ferroflow::metrics::{balanced_subset, frechet_distance};

use crate::args::ClassifierArgs;
use crate::with_backend;

pub fn run(a: ClassifierArgs) -> Result<()> {
    a.device.check()?;
    let size: ImageSize = a.size.parse()?;
    let dir = data_dir(a.mnist.as_deref())?;
    let train = Mnist::load(&dir, Split::Train, size)?;
    let test = Mnist::load(&dir, Split::Test, size)?;
    let config = ClassifierTrainConfig { epochs: a.epochs, seed: a.seed, ..ClassifierTrainConfig::default() };
    config.validate()?;
    let (h, w) = (train.height, train.width);
    let scaled = |m: &Mnist| m.points().data;
    let (x_train, x_test) = (scaled(&train), scaled(&test));
    let started = Instant::now();
    with_backend!(a.device, |_B, AB, device| {
        let clf = train_classifier::<AB>(&x_train, &train.labels, train.n, h, w, &config, &device, &mut |e| {
            eprintln!(
                "epoch {}: loss {:.4}, train accuracy {:.2} % ({:.0} s)",
                e.epoch,
                e.loss,
                100.0 * e.train_accuracy,
                e.seconds
            )
        })?;
        let acc = clf.accuracy(&x_test, &test.labels)?;
        clf.save(&a.out).with_context(|| format!("cannot write {}", a.out.display()))?;
        // The real-vs-real figure generated digits are read against (train vs test, 200 random
        // digits of each class, the same draws as `ferroflow eval`'s; fewer on a small set).
        let px = h * w;
        let fewest = |labels: &[u32]| (0..10u32).map(|c| labels.iter().filter(|&&l| l == c).count()).min();
        let per_class = 200.min(fewest(&test.labels).unwrap_or(0)).min(fewest(&train.labels).unwrap_or(0));
        // The checkpoint is written: a set too small for an FD only leaves the figure out.
        let fd = (|| -> Result<f64> {
            let (ref_a, _) = balanced_subset(&x_test, &test.labels, px, per_class, &mut ferroflow::rng::seeded(0))?;
            let (ref_b, _) = balanced_subset(&x_train, &train.labels, px, per_class, &mut ferroflow::rng::seeded(1))?;
            let d = clf.config.d_features;
            Ok(frechet_distance(&clf.features(&ref_b)?, &clf.features(&ref_a)?, d)?)
        })();
        let fd = match fd {
            Ok(v) if per_class >= 2 => format!("{v:.2}"),
            _ => "n/a (too few digits of some class)".into(),
        };
        eprintln!(
            "test accuracy {:.2} % on {} digits {h}×{w}; real-vs-real FD at {} = {fd}; {:.0} s; wrote {}",
            100.0 * acc,
            test.n,
            10 * per_class,
            started.elapsed().as_secs_f64(),
            a.out.display()
        );
        Ok::<_, anyhow::Error>(())
    })
}
