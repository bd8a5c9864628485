//! The digit classifier and the digit report: layer composition at 16×16 and 28×28, training
//! to 100 % on a separable synthetic set, save → load, wrong-size loads, report accounting.

use burn::tensor::{Tensor, TensorData};
use ferroflow::backend::{Cpu, CpuAutodiff};
use ferroflow::metrics::{
    ClassifierConfig, ClassifierTrainConfig, DigitClassifier, balanced_subset, evaluate_digits,
    evaluate_unconditional_digits, frechet_distance, random_subset, subset_with_counts, train_classifier,
};
use ferroflow::rng::{normal_vec, seeded};

const SIDE: usize = 16;

/// `per_class` noisy images of 10 bar patterns on a 16×16 background of −1: digit c < 5 is a
/// horizontal bar on rows 3c..3c+2, digit c ≥ 5 a vertical bar on columns 3(c−5)..3(c−5)+2,
/// at +1, plus N(0, 0.3²) noise on every pixel.
fn bars(per_class: usize, seed: u64) -> (Vec<f32>, Vec<u32>) {
    let px = SIDE * SIDE;
    let noise = normal_vec(&mut seeded(seed), 10 * per_class * px);
    let mut images = Vec::with_capacity(noise.len());
    let mut labels = Vec::new();
    for k in 0..per_class {
        for c in 0..10usize {
            let z = &noise[(k * 10 + c) * px..(k * 10 + c + 1) * px];
            for i in 0..SIDE {
                for j in 0..SIDE {
                    let on = if c < 5 {
                        (3 * c..3 * c + 3).contains(&i)
                    } else {
                        (3 * (c - 5)..3 * (c - 5) + 3).contains(&j)
                    };
                    images.push(if on { 1.0 } else { -1.0 } + 0.3 * z[i * SIDE + j]);
                }
            }
            labels.push(c as u32);
        }
    }
    (images, labels)
}

fn small_train() -> ClassifierTrainConfig {
    ClassifierTrainConfig { epochs: 6, batch_size: 25, lr: 3e-3, max_shift: 0, c1: 8, c2: 16, d_features: 32, seed: 7 }
}

fn trained() -> DigitClassifier<Cpu> {
    let (x, y) = bars(30, 1);
    train_classifier::<CpuAutodiff>(&x, &y, y.len(), SIDE, SIDE, &small_train(), &Default::default(), &mut |_| {})
        .unwrap()
}

#[test]
fn logits_are_the_head_applied_to_nonnegative_features_at_16_and_28() {
    let device = Default::default();
    for side in [16, 28] {
        let config = ClassifierConfig::new(side, side);
        let clf = config.init::<Cpu>(&device, &mut seeded(3));
        let n = 3;
        let images: Vec<f32> = normal_vec(&mut seeded(4), n * side * side).iter().map(|v| v.tanh()).collect();
        let features = clf.features(&images).unwrap();
        let logits = clf.logits(&images).unwrap();
        assert_eq!(features.len(), n * 128, "{side}×{side}: 128 features per image");
        assert_eq!(logits.len(), n * 10);
        // ReLU output, and not all dead (the default init keeps most units alive).
        assert!(features.iter().all(|&f| f >= 0.0));
        assert!(features.iter().filter(|&&f| f > 0.0).count() > n * 20);
        // logits = features · W + b with the head's own weights, recomputed on the host.
        let w = clf.head.weight.val().into_data().into_vec::<f32>().unwrap(); // burn layout [128, 10]
        let b = clf.head.bias.as_ref().unwrap().val().into_data().into_vec::<f32>().unwrap();
        for r in 0..n {
            for c in 0..10 {
                let manual: f32 = b[c] + (0..128).map(|k| features[r * 128 + k] * w[k * 10 + c]).sum::<f32>();
                // f32 sums of 128 terms of size ~0.1: rounding ~1e-6.
                assert!((manual - logits[r * 10 + c]).abs() < 1e-4, "{side}: {manual} vs {}", logits[r * 10 + c]);
            }
        }
        // The batched host path equals one tensor forward pass.
        let x = Tensor::<Cpu, 4>::from_data(TensorData::new(images.clone(), [n, 1, side, side]), &device);
        let direct = clf.forward(x).into_data().into_vec::<f32>().unwrap();
        assert_eq!(direct, logits);
    }
}

#[test]
fn training_on_separable_bars_reaches_full_held_out_accuracy() {
    let (x, y) = bars(30, 1);
    let mut epochs = Vec::new();
    let clf =
        train_classifier::<CpuAutodiff>(&x, &y, y.len(), SIDE, SIDE, &small_train(), &Default::default(), &mut |e| {
            epochs.push(e)
        })
        .unwrap();
    assert_eq!(epochs.iter().map(|e| e.epoch).collect::<Vec<_>>(), [1, 2, 3, 4, 5, 6]);
    // Chance is ln 10 ≈ 2.3 nats (the first epoch starts there); separable data is fit to
    // ~1e-3 nats by the 6th (measured), so 0.05 leaves room yet fails a model that stalls.
    assert!(epochs[0].loss > 1.0 && epochs[5].loss < 0.05, "{epochs:?}");
    let (xt, yt) = bars(20, 2);
    let acc = clf.accuracy(&xt, &yt).unwrap();
    // The patterns are separable far beyond the noise (bar ±1 vs noise σ 0.3): 100 % expected.
    assert_eq!(acc, 1.0, "held-out accuracy {acc}, epochs {epochs:?}");
    // Same seed, same weights, bit for bit.
    assert_eq!(trained().logits(&xt).unwrap(), clf.logits(&xt).unwrap());
}

#[test]
fn save_then_load_gives_identical_logits_and_other_sizes_are_refused() {
    let device = Default::default();
    let config = ClassifierConfig::new(16, 16);
    let clf = config.init::<Cpu>(&device, &mut seeded(11));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clf.safetensors");
    clf.save(&path).unwrap();
    let loaded = DigitClassifier::<Cpu>::load(&path, 16, 16, &device).unwrap();
    assert_eq!(loaded.config, config);
    let (x, _) = bars(2, 5);
    assert_eq!(loaded.logits(&x).unwrap(), clf.logits(&x).unwrap());
    // A fresh init with another seed differs (so the equality above is not vacuous).
    let other = config.init::<Cpu>(&device, &mut seeded(12));
    assert_ne!(other.logits(&x).unwrap(), clf.logits(&x).unwrap());

    let err = DigitClassifier::<Cpu>::load(&path, 28, 28, &device).unwrap_err().to_string();
    assert!(err.contains("16×16") && err.contains("28×28") && err.contains("ferroflow.image_size"), "{err}");
}

#[test]
fn report_counts_hits_per_requested_digit_and_fd_against_itself_is_zero() {
    let clf = trained();
    let (reference, labels) = bars(10, 20);
    let (reference_b, _) = bars(10, 21);
    let r = evaluate_digits(&clf, &reference, &labels, &reference, &reference_b).unwrap();
    assert_eq!(r.n, 100);
    assert_eq!(r.accuracy, 1.0);
    assert_eq!(r.per_class_accuracy, [1.0; 10]);
    // The generated set is the reference itself: FD = 0 up to f64 eigen-rounding.
    assert!(r.fd.abs() < 1e-6, "fd {}", r.fd);
    let direct =
        frechet_distance(&clf.features(&reference_b).unwrap(), &clf.features(&reference).unwrap(), 32).unwrap();
    assert_eq!(r.fd_real, direct);
    assert!(r.fd_real > 0.0);

    // Requesting digit c + 1 for an image of c: every image counts as a miss.
    let wrong: Vec<u32> = labels.iter().map(|l| (l + 1) % 10).collect();
    let r = evaluate_digits(&clf, &reference, &wrong, &reference, &reference_b).unwrap();
    assert_eq!(r.accuracy, 0.0);
    // Half the digits right: only digits 0–4 are requested correctly.
    let half: Vec<u32> = labels.iter().map(|&l| if l < 5 { l } else { (l + 1) % 10 }).collect();
    let r = evaluate_digits(&clf, &reference, &half, &reference, &reference_b).unwrap();
    assert_eq!(r.accuracy, 0.5);
    // Digit 0 is requested for its own images and the 9s: 10 of 20 hit; 1–4 all hit; 5 is never
    // requested (NaN); 6–9 are requested only for the images of 5–8.
    assert_eq!(r.per_class_accuracy[0], 0.5);
    assert_eq!(r.per_class_accuracy[1..5], [1.0; 4]);
    assert!(r.per_class_accuracy[5].is_nan());
    assert_eq!(r.per_class_accuracy[6..], [0.0; 4]);

    let (sub, sub_labels) = balanced_subset(&reference, &labels, SIDE * SIDE, 3, &mut seeded(9)).unwrap();
    assert_eq!(sub_labels.len(), 30);
    assert!(evaluate_digits(&clf, &sub, &sub_labels, &sub[..20 * SIDE * SIDE], &reference_b).is_err());
}

#[test]
fn unconditional_report_reads_the_share_of_each_digit_and_one_digit_sets_follow_the_counts() {
    let clf = trained();
    let px = SIDE * SIDE;
    let (reference, labels) = bars(10, 20);
    let (reference_b, _) = bars(10, 21);
    let r = evaluate_unconditional_digits(&clf, &reference, &reference, &reference_b).unwrap();
    assert_eq!(r.n, 100);
    assert_eq!(r.class_fraction, [0.1; 10]);
    assert!(r.fd.abs() < 1e-6, "fd {}", r.fd);
    assert!(r.fd_real > 0.0);
    // Only 3s: the share says so, and the FD to the all-digit reference is far above the floor.
    let mut counts = [0; 10];
    counts[3] = 10;
    let (threes, three_labels) = subset_with_counts(&reference, &labels, px, &counts, &mut seeded(2)).unwrap();
    assert_eq!(three_labels, [3; 10]);
    let r = evaluate_unconditional_digits(&clf, &threes, &reference, &reference_b).unwrap();
    assert_eq!(r.class_fraction[3], 1.0);
    assert!(r.fd > 10.0 * r.fd_real, "fd {} vs floor {}", r.fd, r.fd_real);
    // Mixed counts: each digit as often as asked, every image of its own class (the bars of
    // class c are the reference's rows with that label), none twice.
    let mixed = [1, 0, 2, 0, 0, 3, 0, 0, 0, 4];
    let (x, y) = subset_with_counts(&reference, &labels, px, &mixed, &mut seeded(5)).unwrap();
    assert_eq!(y, [0, 2, 2, 5, 5, 5, 9, 9, 9, 9]);
    let rows: Vec<&[f32]> = x.chunks(px).collect();
    for (r, &c) in rows.iter().zip(&y) {
        let k = reference.chunks(px).position(|q| q == *r).expect("a reference image");
        assert_eq!(labels[k], c);
    }
    assert!((1..rows.len()).all(|i| rows[i] != rows[i - 1]));
    // Asking for more of a digit than there are is an error.
    counts[3] = 11;
    assert!(subset_with_counts(&reference, &labels, px, &counts, &mut seeded(2)).is_err());
    // A random subset: distinct images, all from the set.
    let x = random_subset(&reference, px, 30, &mut seeded(3)).unwrap();
    let rows: Vec<&[f32]> = x.chunks(px).collect();
    assert!(rows.iter().all(|r| reference.chunks(px).any(|q| q == *r)));
    assert!((1..30).all(|i| rows[i] != rows[i - 1]));
    assert!(random_subset(&reference, px, 101, &mut seeded(3)).is_err());
}
