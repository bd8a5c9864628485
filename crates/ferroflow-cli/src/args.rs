//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::device::Device;

/// Flow matching generative models: train, sample, evaluate, plot.
///
/// Time runs from t = 0 (the source, usually N(0, I)) to t = 1 (the data).
#[derive(Debug, Parser)]
#[command(name = "ferroflow", version, about, long_about = None, max_term_width = 100)]
pub struct Cli {
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train a velocity field on a 2D world or a data file; writes a checkpoint, the resolved
    /// config and (by default) samples, a picture and their W2 / MMD.
    Train(Box<TrainArgs>),
    /// Draw samples from a trained model with an ODE or SDE solver.
    Sample(SampleArgs),
    /// Score samples against a world or a data set: exact W2, its two-sample floor, MMD.
    Eval(EvalArgs),
    /// Draw samples, trajectories or an animation of the flow as a PNG or GIF.
    Plot(PlotArgs),
    /// Measure this machine: the W2D workload on the fused CPU engine and the burn path.
    Bench(BenchArgs),
    /// Negative log-likelihood of data points under a model: mean ± SE, bits/dim, NFE.
    Nll(NllArgs),
    /// The web explorer: train a 2D flow live in the browser and watch it (127.0.0.1 only).
    Serve(ServeArgs),
    /// Train the MNIST digit classifier that `eval --classifier` scores generated digits with.
    Classifier(ClassifierArgs),
}

/// `ferroflow classifier`.
#[derive(Debug, Args)]
pub struct ClassifierArgs {
    /// The folder of the MNIST IDX files (default: $FERROFLOW_DATA).
    #[arg(long, value_name = "DIR")]
    pub mnist: Option<PathBuf>,
    /// Digit size: 16 (adaptive_avg_pool2d) or 28.
    #[arg(long, default_value = "16", value_name = "PX")]
    pub size: String,
    /// Passes over the 60,000 training digits.
    #[arg(long, default_value_t = 3)]
    pub epochs: usize,
    /// Seed of the weights, the shuffling and the shifts.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output checkpoint (.safetensors).
    #[arg(short, long, value_name = "FILE")]
    pub out: PathBuf,
    /// The device.
    #[arg(long, value_enum, default_value_t)]
    pub device: Device,
}

/// Where the data (or the source) comes from.
#[derive(Debug, Args, Clone, Default)]
#[group(multiple = false)]
pub struct DataArgs {
    /// A 2D world: gaussian, ring, moons, 8gaussians, checkerboard, spirals, swiss_roll.
    #[arg(long, value_name = "NAME")]
    pub world: Option<String>,
    /// A data file: CSV (one point a row) or .npy (2-D, f32/f64).
    #[arg(long, value_name = "FILE")]
    pub data: Option<PathBuf>,
}

/// `ferroflow train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// A TOML config file; flags given on the command line override it.
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The data (default: --world moons).
    #[command(flatten)]
    pub data: DataArgs,
    /// Train on MNIST digits from the IDX files in DIR (default: $FERROFLOW_DATA), class-conditional
    /// with label dropout for classifier-free guidance.
    #[arg(long, value_name = "DIR", num_args = 0..=1, conflicts_with_all = ["world", "data", "source"])]
    pub mnist: Option<Option<PathBuf>>,
    /// Digit size with --mnist: 16 (PyTorch's adaptive_avg_pool2d of the 28×28 digits) or 28.
    #[arg(long, value_name = "PX")]
    pub size: Option<String>,
    /// The network with --mnist.
    #[arg(long, value_enum)]
    pub field: Option<crate::commands::digits::FieldKind>,
    /// Base channels of the U-Net (--field unet).
    #[arg(long, value_name = "N")]
    pub channels: Option<usize>,
    /// The U-Net's channel multiplier per resolution, e.g. 1,2,2 (one level per entry; each
    /// level below the first halves the image).
    #[arg(long, value_name = "M,…", value_delimiter = ',')]
    pub channel_mult: Option<Vec<usize>>,
    /// Residual blocks per U-Net level.
    #[arg(long, value_name = "N")]
    pub res_blocks: Option<usize>,
    /// No self-attention at the U-Net's lowest resolution.
    #[arg(long)]
    pub no_attention: bool,
    /// Probability of dropping a label to the null class during training (classifier-free guidance).
    #[arg(long, value_name = "P")]
    pub label_dropout: Option<f64>,
    /// The source p₀: "gaussian" (N(0, I), the default), a world name, or a data file.
    #[arg(long, value_name = "SPEC")]
    pub source: Option<String>,
    /// Optimizer steps.
    #[arg(long)]
    pub steps: Option<u64>,
    /// Pairs per step.
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Peak learning rate.
    #[arg(long)]
    pub lr: Option<f64>,
    /// How x₀ and x₁ are paired: independent, exact_ot, sinkhorn, class_exact_ot.
    #[arg(long, value_name = "NAME")]
    pub coupling: Option<String>,
    /// The path's scheduler: cond_ot, polynomial, vp, ve, cosine.
    #[arg(long, value_name = "NAME")]
    pub scheduler: Option<String>,
    /// Width of the hidden layers.
    #[arg(long)]
    pub hidden: Option<usize>,
    /// Number of hidden layers.
    #[arg(long)]
    pub layers: Option<usize>,
    /// Decay of the weights' exponential moving average used for sampling (default 0.999; 0: off).
    #[arg(long, value_name = "DECAY")]
    pub ema: Option<f64>,
    /// Seed of every random draw.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Write a checkpoint every N steps (and at the end).
    #[arg(long, value_name = "N")]
    pub checkpoint_every: Option<u64>,
    /// Report W2 and MMD of fresh samples every N steps (0: only at the end).
    #[arg(long, value_name = "N")]
    pub eval_every: Option<u64>,
    /// Stop after this many minutes of training (a checkpoint is written), even before --steps.
    #[arg(long, value_name = "M")]
    pub minutes: Option<f64>,
    /// Continue the run saved in this checkpoint (to its configured steps, or --steps).
    #[arg(long, value_name = "CKPT")]
    pub resume: Option<PathBuf>,
    /// Which implementation trains: auto (the fused CPU engine for MLPs on the CPU), fused, burn.
    #[arg(long, value_name = "NAME")]
    pub engine: Option<String>,
    /// Threads of the fused CPU engine (0: one per core).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Output folder (default: `runs/<data name>`).
    #[arg(short, long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Samples drawn at the end for the picture and the scores (0: none).
    #[arg(long, value_name = "N")]
    pub samples: Option<usize>,
    /// The device.
    #[arg(long, value_enum, default_value_t)]
    pub device: Device,
    /// No progress bar.
    #[arg(short, long)]
    pub quiet: bool,
}

/// The solver options shared by `sample` and `plot`.
#[derive(Debug, Args, Clone)]
pub struct SolverArgs {
    /// ODE solver: euler, midpoint, heun, rk4, dopri5.
    #[arg(long, default_value = "euler", value_name = "NAME")]
    pub solver: String,
    /// Steps of a fixed-step solver.
    #[arg(long, default_value_t = 100)]
    pub steps: usize,
    /// Absolute tolerance of dopri5.
    #[arg(long, default_value_t = 1e-5)]
    pub atol: f64,
    /// Relative tolerance of dopri5.
    #[arg(long, default_value_t = 1e-5)]
    pub rtol: f64,
    /// Sample with the SDE dX = [v + g²/2·score] dt + g dW and this constant g instead of the ODE.
    #[arg(long, value_name = "G")]
    pub sde_g: Option<f64>,
}

/// `ferroflow sample`.
#[derive(Debug, Args)]
pub struct SampleArgs {
    /// The checkpoint (a .safetensors file written by `ferroflow train`).
    #[arg(long, value_name = "CKPT")]
    pub ckpt: PathBuf,
    /// Number of samples (ignored with --x0); default 2000 points, or 100 digits.
    #[arg(short)]
    pub n: Option<usize>,
    /// Seed of the source draws.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Start from these source points (CSV or .npy) instead of fresh draws.
    #[arg(long, value_name = "FILE")]
    pub x0: Option<PathBuf>,
    /// The solver.
    #[command(flatten)]
    pub solver: SolverArgs,
    /// Classifier-free guidance strength w of a class-conditional model:
    /// v = (1 + w)·v(x|c) − w·v(x|∅) (0: plain conditional sampling).
    #[arg(long = "cfg", value_name = "W", default_value_t = 0.0)]
    pub guidance: f64,
    /// Draw only this class (default: digits 0–9, one row each).
    #[arg(long, value_name = "K", conflicts_with = "uncond")]
    pub class: Option<u32>,
    /// Draw without a class (the null class).
    #[arg(long)]
    pub uncond: bool,
    /// Digits: clip the model's estimate of the final image x̂₁ to the pixel range [−1, 1] at
    /// every step (guided-diffusion's clip_denoised). Keeps fixed-step paths bounded where the
    /// field is stiff; the samples then differ from the model's flow where the clip acts.
    #[arg(long)]
    pub clip_x1: bool,
    /// Output file: .csv or .npy (the resolved settings go beside it, as .toml); for digits
    /// .png (a grid, rows = digits, with the images as .npy and labels as _labels.npy beside)
    /// or .npy (uint8 N×H×W).
    #[arg(short, long, value_name = "FILE")]
    pub out: PathBuf,
    /// Point models on the CPU: bf16 runs the hidden layers' products on bf16 operands with
    /// f32 sums (≈ 1.6× faster sampling where the CPU has AVX512-BF16, samples within ≈ 10⁻³
    /// of f32's; f32 on other CPUs, as the .toml beside the output says). Fixed-step and SDE
    /// samplers only.
    #[arg(long, value_enum, default_value_t)]
    pub precision: PrecisionArg,
    /// The device.
    #[arg(long, value_enum, default_value_t)]
    pub device: Device,
}

/// The precision of `ferroflow sample --precision`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum PrecisionArg {
    /// f32 throughout.
    #[default]
    F32,
    /// bf16 operands, f32 sums, in the hidden layers' products.
    Bf16,
}

impl From<PrecisionArg> for ferroflow::engine::Precision {
    fn from(p: PrecisionArg) -> Self {
        match p {
            PrecisionArg::F32 => Self::F32,
            PrecisionArg::Bf16 => Self::Bf16,
        }
    }
}

/// `ferroflow eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The samples: CSV or .npy, any dimension, at most 20,000 points (W2 is an exact OT plan
    /// over a dense cost matrix); with --classifier, digits as uint8 .npy (N×H×W).
    pub samples: PathBuf,
    /// Score digits with this classifier (from `ferroflow classifier`): accuracy on the
    /// requested digit and the Fréchet distance of its features to as many MNIST test digits
    /// of the same digits, beside the real-vs-real (train vs test) distance at the same count.
    /// Samples of `sample --uncond` (labels all 10, the null class) get the distance to random
    /// test digits and the share of each digit the classifier reads.
    #[arg(long, value_name = "CLF", conflicts_with_all = ["world", "data"])]
    pub classifier: Option<PathBuf>,
    /// The requested digit of each sample (uint8 or int64 .npy; default: SAMPLES_labels.npy,
    /// else labels.npy beside the samples).
    #[arg(long, value_name = "FILE", requires = "classifier")]
    pub labels: Option<PathBuf>,
    /// The folder of the MNIST IDX files for --classifier (default: $FERROFLOW_DATA).
    #[arg(long, value_name = "DIR", requires = "classifier")]
    pub mnist: Option<PathBuf>,
    /// The reference.
    #[command(flatten)]
    pub reference: DataArgs,
    /// Fresh reference draws to average over.
    #[arg(long, default_value_t = 5)]
    pub seeds: usize,
    /// Print one JSON object (keys n, w2, floor, ratio, mmd).
    #[arg(long)]
    pub json: bool,
}

/// What `ferroflow plot` draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum PlotKind {
    /// Samples over the data.
    #[default]
    Scatter,
    /// Paths from source to data (one panel per checkpoint).
    Trajectories,
    /// An animated GIF of the points flowing from t = 0 to t = 1.
    Gif,
    /// The model's log-density on a grid, under the samples file or the data if given.
    Density,
}

/// `ferroflow plot`.
#[derive(Debug, Args)]
pub struct PlotArgs {
    /// Samples to draw (CSV or .npy); or give --ckpt to sample them.
    pub samples: Option<PathBuf>,
    /// Checkpoint(s) to sample from; several give panels side by side.
    #[arg(long, value_name = "CKPT")]
    pub ckpt: Vec<PathBuf>,
    /// The data drawn behind the samples.
    #[command(flatten)]
    pub reference: DataArgs,
    /// What to draw.
    #[arg(long, value_enum, default_value_t)]
    pub kind: PlotKind,
    /// Points to sample from each checkpoint.
    #[arg(short, default_value_t = 2000)]
    pub n: usize,
    /// Seed of the source draws (the same noise for every checkpoint).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Cells per axis of the --kind density grid; it covers the model's samples, and its log p₁
    /// comes from the likelihood ODE (exact divergence) under the solver flags.
    #[arg(long, default_value_t = 128, value_name = "N")]
    pub grid: usize,
    /// The solver.
    #[command(flatten)]
    pub solver: SolverArgs,
    /// Output picture: .png (or .gif for --kind gif).
    #[arg(short, long, value_name = "FILE")]
    pub out: PathBuf,
    /// The device.
    #[arg(long, value_enum, default_value_t)]
    pub device: Device,
}

/// The range 8-bit pixels were scaled to, for `--dequantize`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PixelRangeArg {
    /// x = k/255 ∈ [0, 1].
    ZeroOne,
    /// x = 2k/255 − 1 ∈ [−1, 1].
    MinusOneOne,
}

/// `ferroflow nll`.
#[derive(Debug, Args)]
pub struct NllArgs {
    /// The checkpoint (a .safetensors file written by `ferroflow train`).
    #[arg(long, value_name = "CKPT")]
    pub ckpt: PathBuf,
    /// The points to score: CSV or .npy, the model's dimension.
    #[arg(long, value_name = "FILE", required_unless_present = "mnist", conflicts_with = "mnist")]
    pub data: Option<PathBuf>,
    /// For a digits model: score the first -n MNIST test digits from DIR (default
    /// $FERROFLOW_DATA), dequantised, unconditionally (the null class).
    #[arg(long, value_name = "DIR", num_args = 0..=1)]
    pub mnist: Option<Option<PathBuf>>,
    /// Digits to score with --mnist.
    #[arg(short, default_value_t = 100)]
    pub n: usize,
    /// ODE solver for the augmented ODE from t = 1 back to t = 0: euler, midpoint, heun, rk4, dopri5.
    #[arg(long, default_value = "dopri5", value_name = "NAME")]
    pub solver: String,
    /// Steps of a fixed-step solver.
    #[arg(long, default_value_t = 100)]
    pub steps: usize,
    /// Absolute tolerance of dopri5.
    #[arg(long, default_value_t = 1e-5)]
    pub atol: f64,
    /// Relative tolerance of dopri5.
    #[arg(long, default_value_t = 1e-5)]
    pub rtol: f64,
    /// Estimate the divergence with K Rademacher probes per point (Hutchinson) instead of
    /// exactly (exact costs D tangent passes per step).
    #[arg(long, value_name = "K")]
    pub hutchinson: Option<usize>,
    /// Seed of the probes and of the dequantisation noise.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Treat the data as 8-bit images scaled to this range: dequantise uniformly and report
    /// bits/dim of the discrete data (comparable with the literature).
    #[arg(long, value_enum, value_name = "RANGE")]
    pub dequantize: Option<PixelRangeArg>,
    /// Points per solve.
    #[arg(long, default_value_t = 1024)]
    pub batch: usize,
    /// Print one JSON object (keys n, dim, nll, nll_se, bits_per_dim, bits_per_dim_se, nfe, …).
    #[arg(long)]
    pub json: bool,
    /// The device.
    #[arg(long, value_enum, default_value_t)]
    pub device: Device,
}

/// The workloads of `ferroflow bench`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BenchWorkload {
    /// MLP 3→256→256→256→2 SiLU, Adam, batch 256, N(0, I) → moons: training steps/s
    /// (independent, exact OT), 10-step Euler latency at batch 1 and 32, 10k-point throughput,
    /// a control-style field, and the machine's FMA peak.
    W2d,
}

/// `ferroflow bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The workload.
    #[arg(value_enum)]
    pub workload: BenchWorkload,
    /// Interleaved rounds (engine, burn, engine, …); figures are their medians.
    #[arg(long, default_value_t = 7)]
    pub rounds: usize,
    /// Engine threads (0: one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Print one JSON object (keys in the README's Speed section).
    #[arg(long)]
    pub json: bool,
}

/// `ferroflow serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Port on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 8787)]
    pub port: u16,
    /// Open a model made by `ferroflow train` (a .safetensors checkpoint).
    #[arg(long, value_name = "CKPT")]
    pub ckpt: Option<PathBuf>,
}
