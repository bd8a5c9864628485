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
        // digits of each class; the same draws as `ferroflow eval`'s).
        let px = h * w;
        let (ref_a, _) = balanced_subset(&x_test, &test.labels, px, 200, &mut ferroflow::rng::seeded(0))?;
        let (ref_b, _) = balanced_subset(&x_train, &train.labels, px, 200, &mut ferroflow::rng::seeded(1))?;
        let d = clf.config.d_features;
        let fd = frechet_distance(&clf.features(&ref_b)?, &clf.features(&ref_a)?, d)?;
        eprintln!(
            "test accuracy {:.2} % on {} digits {h}×{w}; real-vs-real FD at 2,000 = {fd:.2}; {:.0} s; wrote {}",
            100.0 * acc,
            test.n,
            started.elapsed().as_secs_f64(),
            a.out.display()
        );
        Ok::<_, anyhow::Error>(())
    })
}
