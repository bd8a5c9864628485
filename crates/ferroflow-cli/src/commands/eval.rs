//! `ferroflow eval`.

use std::path::Path;

use anyhow::Result;

use super::common::{self, Reference};
use crate::args::EvalArgs;

pub fn run(a: EvalArgs) -> Result<()> {
    if let Some(clf) = &a.classifier {
        return digits(&a, clf);
    }
    let samples = crate::config::read_points(&a.samples)?;
    if a.seeds == 0 {
        anyhow::bail!("--seeds must be at least 1");
    }
    let reference = match (&a.reference.world, &a.reference.data) {
        (Some(w), None) => Reference::World(w.parse()?),
        (None, Some(p)) => Reference::Data(crate::config::read_points(p)?),
        _ => anyhow::bail!("give the reference: --world NAME or --data FILE"),
    };
    let report = reference.evaluate(&samples, a.seeds, true)?;
    if a.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!("{}", common::describe(&report));
    }
    Ok(())
}

/// `eval SAMPLES.npy --classifier CLF`: accuracy and FD of generated digits.
fn digits(a: &EvalArgs, clf: &Path) -> Result<()> {
    use ferroflow::data::images_io::{read_images_npy, read_labels_npy};
    use ferroflow::data::mnist::{ImageSize, Mnist, Split, data_dir};
    let (images, n, h, w) = read_images_npy(&a.samples)?;
    let labels_path = match &a.labels {
        Some(p) => p.clone(),
        None => {
            let stem = a.samples.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            let beside = a.samples.with_file_name(format!("{stem}_labels.npy"));
            if beside.is_file() { beside } else { a.samples.with_file_name("labels.npy") }
        }
    };
    let labels = read_labels_npy(&labels_path)?;
    if labels.len() != n {
        anyhow::bail!("{}: {} labels for {n} images in {}", labels_path.display(), labels.len(), a.samples.display());
    }
    // Requested digits (any mix: the real sets follow it) or, for `sample --uncond`, only the
    // null class 10 (the real sets are then random digits).
    let null = ferroflow::metrics::N_CLASSES as u32;
    let unconditional = labels.iter().all(|&l| l == null);
    let mut counts = [0usize; 10];
    if !unconditional {
        for &l in &labels {
            match counts.get_mut(l as usize) {
                Some(c) => *c += 1,
                None if l == null => anyhow::bail!(
                    "{}: the labels mix digits and the null class {null}: evaluate conditional and unconditional samples apart",
                    labels_path.display()
                ),
                None => {
                    anyhow::bail!("{}: label {l} is not a digit (0–9) or the null class {null}", labels_path.display())
                }
            }
        }
    }
    let size = match (h, w) {
        (16, 16) => ImageSize::Down16,
        (28, 28) => ImageSize::Full28,
        _ => anyhow::bail!("{}: {h}×{w} images; expected 16×16 or 28×28 digits", a.samples.display()),
    };
    let dir = data_dir(a.mnist.as_deref())?;
    let px = h * w;
    // Random draws (MNIST's files are ordered by writer population, so the first ones are a
    // biased sample), from fixed seeds: every evaluation scores against the same digits.
    let real = |split, seed| -> Result<Vec<f32>> {
        let m = Mnist::load(&dir, split, size)?;
        let mut rng = ferroflow::rng::seeded(seed);
        let x = m.points().data;
        Ok(if unconditional {
            ferroflow::metrics::random_subset(&x, px, n, &mut rng)?
        } else {
            ferroflow::metrics::subset_with_counts(&x, &m.labels, px, &counts, &mut rng)?.0
        })
    };
    let (test, train) = (real(Split::Test, 0)?, real(Split::Train, 1)?);
    let generated: Vec<f32> = images.iter().map(|&v| f32::from(v) / 127.5 - 1.0).collect();
    let device = Default::default();
    let classifier =
        ferroflow::metrics::classifier::DigitClassifier::<ferroflow::backend::Cpu>::load(clf, h, w, &device)?;
    if unconditional {
        let report = ferroflow::metrics::evaluate_unconditional_digits(&classifier, &generated, &test, &train)?;
        if a.json {
            println!("{}", serde_json::to_string(&report)?);
        } else {
            let shares: Vec<String> = report.class_fraction.iter().map(|f| format!("{:.0}", 100.0 * f)).collect();
            println!(
                "unconditional: FD {:.2} (real vs real at the same count: {:.2}); digits read as 0–9: {} %; n = {n}",
                report.fd,
                report.fd_real,
                shares.join(" / ")
            );
        }
        return Ok(());
    }
    let report = ferroflow::metrics::evaluate_digits(&classifier, &generated, &labels, &test, &train)?;
    if a.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "accuracy {:.2} % on the requested digit; FD {:.2} (real vs real at the same count: {:.2}); n = {n}",
            100.0 * report.accuracy,
            report.fd,
            report.fd_real
        );
    }
    Ok(())
}
