//! Quality of generated digits: accuracy on the requested digit and the Fréchet distance in a
//! [`DigitClassifier`]'s features, next to the real-vs-real Fréchet distance at the same count.

use burn::tensor::backend::Backend;
use rand::seq::IndexedRandom as _;
use serde::Serialize;

use super::classifier::{DigitClassifier, N_CLASSES};
use super::frechet::frechet_distance;

/// The figures for one set of generated digits.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DigitReport {
    /// Generated images evaluated (and the count of each real set in the FDs).
    pub n: usize,
    /// Fraction of generated images the classifier reads as the digit that was requested.
    pub accuracy: f64,
    /// FD(generated, reference) in the classifier's features, at count n.
    pub fd: f64,
    /// FD(reference_b, reference) at the same count n: the floor a perfect generator would
    /// reach at this count (FD grows as the count falls).
    pub fd_real: f64,
    /// Accuracy among the images requested as each digit 0–9 (NaN for a digit not requested).
    pub per_class_accuracy: [f64; N_CLASSES],
}

/// Evaluates generated digits against real ones.
///
/// # Formula
/// accuracy = (1/n) Σᵢ 1[argmax f(xᵢ) = cᵢ]; fd = FD(φ(generated), φ(reference[..n]));
/// fd_real = FD(φ(reference_b[..n]), φ(reference[..n])), with φ the classifier's penultimate
/// features and FD the [Fréchet distance](super::frechet_distance) (Heusel et al. 2017).
///
/// The first n images of `reference` (real test digits) and of `reference_b` (a second real
/// set, e.g. training digits) are used, so that all three sets have the same count: pass them
/// in the same class mix as the requests (e.g. [`balanced_subset`] with n/10 a digit).
///
/// # Shapes
/// `generated: [n, height, width]`, `requested_labels: [n]`, `reference` and `reference_b`:
/// `[≥ n, height, width]`, row-major, in [−1, 1], at the classifier's image size.
///
/// # Errors
/// [`crate::Error::Shape`] if n < 2, the counts or lengths disagree, a reference has fewer than
/// n images, a label is ≥ 10 or a pixel is not finite.
pub fn evaluate_digits<B: Backend>(
    classifier: &DigitClassifier<B>,
    generated: &[f32],
    requested_labels: &[u32],
    reference: &[f32],
    reference_b: &[f32],
) -> crate::Result<DigitReport> {
    let px = classifier.config.pixels();
    let n = requested_labels.len();
    let shape_err = |expected: String, got: String| crate::Error::Shape { op: "evaluate_digits", expected, got };
    if n < 2 || generated.len() != n * px {
        return Err(shape_err(
            format!("n ≥ 2 generated images of {} pixels, one per label", classifier.config.image_size()),
            format!("{} values and {n} labels", generated.len()),
        ));
    }
    if let Some(i) = requested_labels.iter().position(|&l| l as usize >= N_CLASSES) {
        return Err(shape_err("labels in 0..10".into(), format!("label {} at index {i}", requested_labels[i])));
    }
    check_references(classifier, n, reference, reference_b, "evaluate_digits")?;
    let logits = classifier.logits(generated)?;
    let mut hits = [0usize; N_CLASSES];
    let mut asked = [0usize; N_CLASSES];
    for (row, &c) in logits.chunks(N_CLASSES).zip(requested_labels) {
        let predicted = argmax(row);
        asked[c as usize] += 1;
        hits[c as usize] += usize::from(predicted == c as usize);
    }
    let per_class_accuracy = std::array::from_fn(|c| hits[c] as f64 / asked[c] as f64);
    let accuracy = hits.iter().sum::<usize>() as f64 / n as f64;

    let (fd, fd_real) = fds(classifier, generated, &reference[..n * px], &reference_b[..n * px])?;
    Ok(DigitReport { n, accuracy, fd, fd_real, per_class_accuracy })
}

/// Index of the largest logit (the first on ties).
fn argmax(row: &[f32]) -> usize {
    row.iter().enumerate().fold(0, |best, (i, &v)| if v > row[best] { i } else { best })
}

/// Both real sets hold at least n images of the classifier's size.
fn check_references<B: Backend>(
    classifier: &DigitClassifier<B>,
    n: usize,
    reference: &[f32],
    reference_b: &[f32],
    op: &'static str,
) -> crate::Result<()> {
    let px = classifier.config.pixels();
    for (name, r) in [("reference", reference), ("reference_b", reference_b)] {
        if r.len() < n * px || r.len() % px != 0 {
            return Err(crate::Error::Shape {
                op,
                expected: format!("{name}: at least n = {n} images of {} pixels", classifier.config.image_size()),
                got: format!("{} values", r.len()),
            });
        }
    }
    Ok(())
}

/// (FD(generated, reference), FD(reference_b, reference)) in the classifier's features, the
/// three sets of the same count.
fn fds<B: Backend>(
    classifier: &DigitClassifier<B>,
    generated: &[f32],
    reference: &[f32],
    reference_b: &[f32],
) -> crate::Result<(f64, f64)> {
    let d = classifier.config.d_features;
    let f_ref = classifier.features(reference)?;
    let fd = frechet_distance(&classifier.features(generated)?, &f_ref, d)?;
    let fd_real = frechet_distance(&classifier.features(reference_b)?, &f_ref, d)?;
    Ok((fd, fd_real))
}

/// The figures for one set of unconditionally generated digits (no digit was requested).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UnconditionalReport {
    /// Generated images evaluated (and the count of each real set in the FDs).
    pub n: usize,
    /// FD(generated, reference) in the classifier's features, at count n.
    pub fd: f64,
    /// FD(reference_b, reference) at the same count n.
    pub fd_real: f64,
    /// Fraction of the generated images the classifier reads as each digit 0–9 (mode coverage:
    /// ≈ 0.1 each for MNIST; a digit the model never draws shows as 0).
    pub class_fraction: [f64; N_CLASSES],
}

/// Evaluates digits generated without a requested class against real ones (`reference` and
/// `reference_b` drawn without regard to class, e.g. by [`random_subset`]).
///
/// # Formula
/// fd = FD(φ(generated), φ(reference[..n])), fd_real = FD(φ(reference_b[..n]), φ(reference[..n]))
/// as in [`evaluate_digits`]; class_fraction\[c\] = (1/n) Σᵢ 1\[argmax f(xᵢ) = c\].
///
/// # Errors
/// As [`evaluate_digits`] (without the labels).
pub fn evaluate_unconditional_digits<B: Backend>(
    classifier: &DigitClassifier<B>,
    generated: &[f32],
    reference: &[f32],
    reference_b: &[f32],
) -> crate::Result<UnconditionalReport> {
    let px = classifier.config.pixels();
    let n = generated.len() / px.max(1);
    let shape_err =
        |expected: String, got: String| crate::Error::Shape { op: "evaluate_unconditional_digits", expected, got };
    if n < 2 || generated.len() != n * px {
        return Err(shape_err(
            format!("n ≥ 2 generated images of {}", classifier.config.image_size()),
            format!("{} values", generated.len()),
        ));
    }
    check_references(classifier, n, reference, reference_b, "evaluate_unconditional_digits")?;
    let logits = classifier.logits(generated)?;
    let mut seen = [0usize; N_CLASSES];
    for row in logits.chunks(N_CLASSES) {
        seen[argmax(row)] += 1;
    }
    let (fd, fd_real) = fds(classifier, generated, &reference[..n * px], &reference_b[..n * px])?;
    Ok(UnconditionalReport { n, fd, fd_real, class_fraction: std::array::from_fn(|c| seen[c] as f64 / n as f64) })
}

/// `per_class` images of each digit 0–9 drawn at random without replacement (the order within
/// the set is also random), digit by digit (all the 0s, then the 1s, …), with their labels.
///
/// Random rather than the first ones: MNIST's files are not shuffled by writer population (the
/// first 5,000 test digits are the cleaner half), so a "first k" subset is a biased sample and
/// inflates a real-vs-real FD.
///
/// # Shapes
/// `images: [n, pixels]`, `labels: [n]` → (`[10·per_class, pixels]`, `[10·per_class]`)
///
/// # Errors
/// [`crate::Error::Shape`] if the lengths disagree or some digit has fewer than `per_class`
/// images.
///
/// ```
/// use ferroflow::metrics::balanced_subset;
/// let labels: Vec<u32> = (0..40).map(|i| i % 10).collect();
/// let images: Vec<f32> = (0..40).map(|i| i as f32).collect(); // one pixel each: its index
/// let (x, y) = balanced_subset(&images, &labels, 1, 2, &mut ferroflow::rng::seeded(0)).unwrap();
/// assert_eq!(y, [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9]);
/// // Each picked image shows its digit (index mod 10), and no image is picked twice.
/// assert!(x.iter().zip(&y).all(|(&i, &c)| i as u32 % 10 == c));
/// assert!(x[0] != x[1]);
/// ```
pub fn balanced_subset(
    images: &[f32],
    labels: &[u32],
    pixels: usize,
    per_class: usize,
    rng: &mut crate::rng::Rng,
) -> crate::Result<(Vec<f32>, Vec<u32>)> {
    subset_with_counts(images, labels, pixels, &[per_class; N_CLASSES], rng)
}

/// `counts[c]` images of each digit c drawn at random without replacement, digit by digit, with
/// their labels: a real set in the class mix of some requests (all of one digit, say).
/// [`balanced_subset`] is the case of equal counts, with the same draws.
///
/// # Shapes
/// `images: [n, pixels]`, `labels: [n]` → (`[Σ counts, pixels]`, `[Σ counts]`)
///
/// # Errors
/// As [`balanced_subset`].
///
/// ```
/// use ferroflow::metrics::subset_with_counts;
/// let labels: Vec<u32> = (0..40).map(|i| i % 10).collect();
/// let images: Vec<f32> = (0..40).map(|i| i as f32).collect();
/// let counts = [0, 0, 0, 3, 0, 0, 0, 1, 0, 0];
/// let (x, y) = subset_with_counts(&images, &labels, 1, &counts, &mut ferroflow::rng::seeded(0)).unwrap();
/// assert_eq!(y, [3, 3, 3, 7]);
/// assert!(x.iter().zip(&y).all(|(&i, &c)| i as u32 % 10 == c));
/// ```
pub fn subset_with_counts(
    images: &[f32],
    labels: &[u32],
    pixels: usize,
    counts: &[usize; N_CLASSES],
    rng: &mut crate::rng::Rng,
) -> crate::Result<(Vec<f32>, Vec<u32>)> {
    let shape_err = |expected: String, got: String| crate::Error::Shape { op: "subset_with_counts", expected, got };
    if pixels == 0 || images.len() != labels.len() * pixels {
        return Err(shape_err(
            format!("one label per image of {pixels} pixels"),
            format!("{} values and {} labels", images.len(), labels.len()),
        ));
    }
    let total: usize = counts.iter().sum();
    let mut x = Vec::with_capacity(total * pixels);
    let mut y = Vec::with_capacity(total);
    for (c, &k) in (0..N_CLASSES as u32).zip(counts) {
        if k == 0 {
            continue;
        }
        let of_c: Vec<usize> = labels.iter().enumerate().filter(|&(_, &l)| l == c).map(|(i, _)| i).collect();
        if of_c.len() < k {
            return Err(shape_err(format!("{k} images of digit {c}"), format!("{}", of_c.len())));
        }
        for &i in of_c.choose_multiple(rng, k) {
            x.extend_from_slice(&images[i * pixels..(i + 1) * pixels]);
            y.push(c);
        }
    }
    Ok((x, y))
}

/// `n` images drawn at random without replacement, whatever their digit: the real set that
/// unconditional samples are read against.
///
/// # Shapes
/// `images: [m, pixels]` → `[n, pixels]`
///
/// # Errors
/// [`crate::Error::Shape`] if `images` is not a whole number of images or holds fewer than n.
pub fn random_subset(images: &[f32], pixels: usize, n: usize, rng: &mut crate::rng::Rng) -> crate::Result<Vec<f32>> {
    let m = images.len() / pixels.max(1);
    if pixels == 0 || images.len() != m * pixels || m < n {
        return Err(crate::Error::Shape {
            op: "random_subset",
            expected: format!("at least {n} images of {pixels} pixels"),
            got: format!("{} values", images.len()),
        });
    }
    let idx = rand::seq::index::sample(rng, m, n);
    let mut x = Vec::with_capacity(n * pixels);
    for i in idx {
        x.extend_from_slice(&images[i * pixels..(i + 1) * pixels]);
    }
    Ok(x)
}
