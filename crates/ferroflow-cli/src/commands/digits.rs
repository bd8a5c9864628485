//! Digits: `ferroflow train --mnist`, digit grids from `ferroflow sample`, and the settings of
//! a digits run.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, Result};
use burn::module::AutodiffModule;
use burn::tensor::backend::{AutodiffBackend, Backend};
use ferroflow::checkpoint::Checkpoint;
use ferroflow::data::mnist::{ImageSize, Mnist, MnistSource, Split, data_dir, to_u8_image};
use ferroflow::data::{GaussianSource, PointSource as _, Points};
use ferroflow::model::{
    Activation, ClassifierFree, ClipX1, ConditionConfig, FieldConfig, MlpFieldConfig, TimeEmbeddingConfig, UNetConfig,
    VelocityField,
};
use ferroflow::solver::SolverConfig;
use ferroflow::train::{Control, TrainConfig, TrainEvent, Trainer};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

use crate::args::TrainArgs;
use crate::with_backend;

/// The number of digit classes; label 10 is the null class of classifier-free guidance.
pub const CLASSES: u32 = 10;

/// Which network learns the digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum FieldKind {
    /// The core MLP on the flattened image (with a class embedding).
    Mlp,
    /// The U-Net.
    #[default]
    Unet,
}

/// A digits run: written as `config.toml` beside the outputs and stored in the checkpoint
/// (metadata `ferroflow.run` = `{"digits": …}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DigitRun {
    /// The folder of the MNIST IDX files (unset: `FERROFLOW_DATA`).
    pub data: Option<PathBuf>,
    /// 28×28 or 16×16 (PyTorch's `adaptive_avg_pool2d`).
    pub size: ImageSize,
    /// The network.
    pub field: FieldKind,
    /// The MLP's settings (`field = "mlp"`).
    pub mlp: MlpFieldConfig,
    /// The U-Net's settings (`field = "unet"`).
    pub unet: UNetConfig,
    /// Training.
    pub train: TrainConfig,
    /// Euler steps of the grid drawn at the end.
    pub grid_steps: usize,
}

impl Default for DigitRun {
    fn default() -> Self {
        Self {
            data: None,
            size: ImageSize::Down16,
            field: FieldKind::Unet,
            mlp: MlpFieldConfig {
                d_input: 256,
                d_hidden: 1024,
                n_hidden: 4,
                activation: Activation::Silu,
                time_embedding: TimeEmbeddingConfig::Sinusoidal { dim: 128, max_period: 10_000.0, scale: 1000.0 },
                condition: ConditionConfig::Class { n_classes: CLASSES as usize, d_embed: 64 },
            },
            unet: UNetConfig::default(),
            train: TrainConfig {
                steps: 20_000,
                batch_size: 128,
                lr: 5e-4,
                warmup_steps: 100,
                grad_clip: Some(1.0),
                ema_decay: Some(0.999),
                label_dropout: 0.1,
                checkpoint_every: 500,
                ..TrainConfig::default()
            },
            grid_steps: 50,
        }
    }
}

impl DigitRun {
    /// Sets the image size in both networks' settings.
    fn set_size(&mut self, size: ImageSize) {
        self.size = size;
        let s = size.side();
        self.mlp.d_input = s * s;
        self.unet.height = s;
        self.unet.width = s;
    }

    /// A run from a TOML file. What the file leaves out takes the digits defaults
    /// ([`DigitRun::default`]: batch 128, label dropout 0.1, EMA, …), not the 2-D ones of
    /// [`TrainConfig::default`]: the top-level keys and the keys of `[train]`, `[mlp]` and
    /// `[unet]` are laid over the defaults one by one; a nested table (`[train.optimizer]`, …)
    /// replaces the default's whole.
    pub fn from_toml(text: &str) -> Result<Self, toml::de::Error> {
        let user: toml::Table = toml::from_str(text)?;
        let mut run = toml::Table::try_from(DigitRun::default()).expect("the defaults serialise");
        for (key, value) in user {
            match (run.get_mut(&key), value) {
                (Some(toml::Value::Table(base)), toml::Value::Table(over)) => base.extend(over),
                (_, value) => {
                    run.insert(key, value);
                }
            }
        }
        toml::Value::Table(run).try_into()
    }

    /// The run stored in a checkpoint, if it is a digits run.
    pub fn of(ck: &Checkpoint) -> Result<Option<Self>> {
        let Some(s) = ck.metadata.get("ferroflow.run") else { return Ok(None) };
        let v: serde_json::Value = serde_json::from_str(s).unwrap_or_default();
        match v.get("digits") {
            None => Ok(None),
            Some(d) => {
                Ok(Some(serde_json::from_value(d.clone()).with_context(|| {
                    format!("{}: metadata \"ferroflow.run\" is not a digits run", ck.path.display())
                })?))
            }
        }
    }
}

/// `ferroflow train --mnist [DIR]`.
pub fn train(a: &TrainArgs, dir: Option<&Path>) -> Result<()> {
    let budget = super::train::budget(a.minutes)?;
    let resumed = match &a.resume {
        Some(p) => Some(Checkpoint::read(p)?),
        None => None,
    };
    let mut run = match (&a.config, &resumed) {
        (Some(p), _) => {
            let text = std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
            DigitRun::from_toml(&text).map_err(|e| anyhow::anyhow!("{}: {}", p.display(), e.message()))?
        }
        (None, Some(ck)) => DigitRun::of(ck)?.context("--resume: the checkpoint is not a digits run")?,
        (None, None) => DigitRun::default(),
    };
    if let Some(d) = dir {
        run.data = Some(d.to_path_buf());
    }
    if let Some(f) = a.field {
        if f == FieldKind::Mlp && a.lr.is_none() && run.field != FieldKind::Mlp {
            run.train.lr = 1e-3; // the MLP recipe's rate
        }
        run.field = f;
    }
    let size = match &a.size {
        Some(s) => s.parse::<ImageSize>()?,
        None => run.size,
    };
    run.set_size(size);
    apply(&mut run, a)?;
    let dir = data_dir(run.data.as_deref())?;
    let out = a.out.clone().unwrap_or_else(|| PathBuf::from("runs").join(format!("digits{}", size.side())));
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let started = Instant::now();
    let data = Mnist::load(&dir, Split::Train, size)?;
    eprintln!(
        "{} training digits {}×{} from {} ({:.1} s)",
        data.n,
        data.height,
        data.width,
        dir.display(),
        started.elapsed().as_secs_f64()
    );
    let mut target = MnistSource::new(&data)?;
    let on_cpu = a.device == crate::device::Device::Cpu;
    with_backend!(a.device, |_B, AB, device| {
        match run.field {
            FieldKind::Mlp => train_with::<AB, MlpFieldConfig>(
                run.mlp,
                &run,
                resumed.as_ref(),
                a,
                budget,
                &mut target,
                &out,
                &device,
                on_cpu,
            ),
            FieldKind::Unet => train_with::<AB, UNetConfig>(
                run.unet.clone(),
                &run,
                resumed.as_ref(),
                a,
                budget,
                &mut target,
                &out,
                &device,
                on_cpu,
            ),
        }
    })
}

fn apply(run: &mut DigitRun, a: &TrainArgs) -> Result<()> {
    super::train::apply_train_overrides(&mut run.train, a)?;
    if let Some(v) = a.hidden {
        run.mlp.d_hidden = v;
    }
    if let Some(v) = a.layers {
        run.mlp.n_hidden = v;
    }
    if let Some(v) = a.channels {
        run.unet.base_channels = v;
    }
    if let Some(v) = &a.channel_mult {
        run.unet.channel_mult = v.clone();
    }
    if let Some(v) = a.res_blocks {
        run.unet.res_blocks = v;
    }
    if a.no_attention {
        run.unet.attention = false;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn train_with<AB, C>(
    model_cfg: C,
    run: &DigitRun,
    resumed: Option<&Checkpoint>,
    a: &TrainArgs,
    budget: Option<std::time::Duration>,
    target: &mut MnistSource,
    out: &Path,
    device: &AB::Device,
    on_cpu: bool,
) -> Result<()>
where
    AB: AutodiffBackend,
    C: FieldConfig,
    C::Field<AB>: AutodiffModule<AB, InnerModule = C::Field<AB::InnerBackend>>,
{
    let mut run = run.clone();
    let mut trainer = match resumed {
        Some(ck) => {
            let mut t = Trainer::<AB, C>::resume(ck, device)?;
            if let Some(s) = a.steps {
                t.set_total_steps(s);
            }
            run.train = *t.config();
            t
        }
        None => Trainer::<AB, C>::new(model_cfg, run.train, device)?,
    };
    if let Some(threads) = a.threads {
        trainer.set_threads(threads);
    }
    trainer.run_info = serde_json::json!({ "digits": run });
    let text = toml::to_string_pretty(&run).context("cannot serialise the configuration")?;
    let cfg_path = out.join("config.toml");
    let text =
        format!("# ferroflow train --mnist: resolved configuration (rerun with `-c {}`)\n{text}", cfg_path.display());
    ferroflow::checkpoint::write_atomic(&cfg_path, text.as_bytes())
        .with_context(|| format!("cannot write {}", cfg_path.display()))?;
    let ckpt_path = out.join("model.safetensors");
    let total = run.train.steps;
    let bar = if a.quiet { ProgressBar::hidden() } else { ProgressBar::new(total) };
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} steps  {msg}")
            .expect("static template")
            .progress_chars("=> "),
    );
    bar.set_position(trainer.step());
    let first = trainer.step();
    let started = Instant::now();
    let mut log = String::from("step,loss,lr,seconds\n");
    let mut source = GaussianSource { dim: model_cfg_dim(&trainer), std: run.train.scheduler.source_std() };
    let result = trainer.run(&mut source, target, Some(&ckpt_path), 0, &mut |e| {
        if let TrainEvent::Step { step, loss, lr } = e {
            let secs = started.elapsed().as_secs_f64();
            log.push_str(&format!("{step},{loss},{lr},{secs:.3}\n"));
            bar.set_position(step);
            let rate = (step - first) as f64 * run.train.batch_size as f64 / secs.max(1e-9);
            bar.set_message(format!("loss {loss:.4}  {rate:.0} images/s"));
            if budget.is_some_and(|b| started.elapsed() >= b) {
                return Control::Stop;
            }
        }
        Control::Continue
    });
    bar.finish_and_clear();
    let log_path = out.join("loss.csv");
    ferroflow::checkpoint::write_atomic(&log_path, log.as_bytes())
        .with_context(|| format!("cannot write {}", log_path.display()))?;
    result?;
    let secs = started.elapsed().as_secs_f64();
    let done = trainer.step() - first;
    eprintln!(
        "trained {done} steps in {secs:.1} s ({:.1} steps/s, {:.0} images/s); checkpoint {}",
        done as f64 / secs.max(1e-9),
        (done * run.train.batch_size as u64) as f64 / secs.max(1e-9),
        ckpt_path.display()
    );
    if a.samples == Some(0) {
        return Ok(());
    }
    let model = trainer.sampling_model();
    let field = sampling_field::<AB::InnerBackend, C>(trainer.model_config(), &model, on_cpu);
    let solver = SolverConfig::Fixed { method: ferroflow::solver::OdeMethod::Euler, steps: run.grid_steps };
    let labels = grid_labels(100, None);
    for w in [0.0, 2.0] {
        let (images, _) = sample_digits(&*field, &labels, w, &solver, &run, 0, device)?;
        let path = out.join(format!("grid_w{w}.png"));
        let s = run.size.side();
        ferroflow::plot::write_digit_grid(&path, &images, labels.len(), s, s, 10, 4)?;
        eprintln!("wrote {} (rows: digits 0–9, Euler {}, guidance w = {w})", path.display(), run.grid_steps);
    }
    Ok(())
}

fn model_cfg_dim<AB: AutodiffBackend, C: FieldConfig>(t: &Trainer<AB, C>) -> usize
where
    C::Field<AB>: AutodiffModule<AB, InnerModule = C::Field<AB::InnerBackend>>,
{
    t.model_config().dim()
}

/// The field to sample from: the fused CPU engine for an MLP on the CPU, else the burn module.
pub fn sampling_field<'a, B: Backend, C: FieldConfig>(
    cfg: &C,
    model: &'a C::Field<B>,
    on_cpu: bool,
) -> Box<dyn VelocityField<B> + 'a> {
    match cfg.as_mlp() {
        Some(m) if on_cpu && ferroflow::engine::available() => {
            let net = ferroflow::engine::FusedMlp::from_tensors(m, &C::tensors_of(model));
            Box::new(ferroflow::engine::FusedField::new(net, 0))
        }
        _ => Box::new(model),
    }
}

/// Labels for `n` digits laid out as a grid whose row r shows digit r (n/10 a class; the
/// remainder, if any, takes the last rows' digits), or all `class`.
pub fn grid_labels(n: usize, class: Option<u32>) -> Vec<u32> {
    match class {
        Some(c) => vec![c; n],
        None => {
            let per = n.div_ceil(CLASSES as usize).max(1);
            (0..n).map(|i| (i / per) as u32).collect()
        }
    }
}

/// Draws one digit per label (`None` in `labels`' place: unconditional) with guidance `w`,
/// from source noise seeded by `seed`, in batches of 250; returns the images as bytes
/// (N×H×W) and the number of velocity evaluations per batch.
pub fn sample_digits<B: Backend>(
    field: &dyn VelocityField<B>,
    labels: &[u32],
    w: f64,
    solver: &SolverConfig,
    run: &DigitRun,
    seed: u64,
    device: &B::Device,
) -> Result<(Vec<u8>, usize)> {
    sample_digits_with(field, Some(labels), labels.len(), w, false, solver, run, seed, device)
}

/// As [`sample_digits`]; `labels = None` draws `n` unconditional digits (the null class);
/// `clip` clips the x₁-prediction to the pixel range ([`ferroflow::model::ClipX1`]).
#[allow(clippy::too_many_arguments)]
pub fn sample_digits_with<B: Backend>(
    field: &dyn VelocityField<B>,
    labels: Option<&[u32]>,
    n: usize,
    w: f64,
    clip: bool,
    solver: &SolverConfig,
    run: &DigitRun,
    seed: u64,
    device: &B::Device,
) -> Result<(Vec<u8>, usize)> {
    let dim = field.dim();
    let x0 =
        GaussianSource { dim, std: run.train.scheduler.source_std() }.sample(n, &mut ferroflow::rng::seeded(seed)).0;
    let mut images = Vec::with_capacity(n * dim);
    let mut nfe = 0;
    let (mut bad, mut first_bad) = (0usize, None);
    for start in (0..n).step_by(250) {
        let end = (start + 250).min(n);
        let rows: Vec<usize> = (start..end).collect();
        let x = x0.select(&rows).to_tensor::<B>(device);
        let guided = ClassifierFree::new(field, w, labels.map(|l| l[start..end].to_vec()), CLASSES)?;
        let sol = if clip {
            solver.solve(&ClipX1::new(&guided, run.train.scheduler, -1.0, 1.0), x, None, 0.0, 1.0, false)?
        } else {
            solver.solve(&guided, x, None, 0.0, 1.0, false)?
        };
        nfe = nfe.max(sol.nfe);
        let x1 = Points::from_tensor(sol.x);
        for (i, row) in x1.data.chunks(dim).enumerate() {
            if !row.iter().all(|a| a.is_finite()) {
                bad += 1;
                first_bad.get_or_insert(start + i);
            }
        }
        images.extend(to_u8_image(&x1.data));
    }
    if let Some(i) = first_bad {
        anyhow::bail!(
            "{bad} of {n} digits hold NaN or infinite values (the first is #{i}): the field is too stiff along their \
             paths for this solver; try another step count, --solver dopri5 or --clip-x1"
        );
    }
    Ok((images, nfe))
}

/// `ferroflow sample` on a digits checkpoint: a grid (rows = digits) and/or the images as .npy.
pub fn sample(a: &crate::args::SampleArgs, ck: &Checkpoint, run: &DigitRun) -> Result<()> {
    if a.x0.is_some() {
        anyhow::bail!("--x0 is for point models; digits start from N(0, I) noise drawn from --seed");
    }
    let n = a.n.unwrap_or(100);
    if n == 0 || n > 1_000_000 {
        anyhow::bail!("-n {n}: expected 1..=1000000 digits");
    }
    if let Some(c) = a.class
        && c >= CLASSES
    {
        anyhow::bail!("--class {c}: expected a digit 0–9");
    }
    let labels = grid_labels(n, a.class);
    let solver = match super::common::sampler(&a.solver, &crate::config::RunConfig::default(), a.seed)? {
        super::common::Sampler::Ode(s) => s,
        super::common::Sampler::Sde { .. } => anyhow::bail!("--sde-g: digits are sampled with the ODE solvers"),
    };
    let on_cpu = a.device == crate::device::Device::Cpu;
    let started = Instant::now();
    let cond = (!a.uncond).then_some(labels.as_slice());
    let (images, nfe) = with_backend!(a.device, |B, _AB, device| {
        let kind = ferroflow::train::field_kind(ck).to_string();
        match kind.as_str() {
            "mlp" => {
                let m = ferroflow::train::load_sampling_field::<B, MlpFieldConfig>(ck, &device)?;
                let f = sampling_field::<B, MlpFieldConfig>(&m.config, &m, on_cpu);
                sample_digits_with(&*f, cond, n, a.guidance, a.clip_x1, &solver, run, a.seed, &device)?
            }
            "unet" => {
                let m = ferroflow::train::load_sampling_field::<B, UNetConfig>(ck, &device)?;
                sample_digits_with(&m, cond, n, a.guidance, a.clip_x1, &solver, run, a.seed, &device)?
            }
            other => anyhow::bail!("{}: unknown field kind {other:?}", ck.path.display()),
        }
    });
    let secs = started.elapsed().as_secs_f64();
    let s = run.size.side();
    let ext = a.out.extension().and_then(|e| e.to_str()).unwrap_or("");
    let mut wrote = Vec::new();
    let npy = match ext {
        "png" => {
            let cols = if a.class.is_some() { (n as f64).sqrt().ceil() as usize } else { n.div_ceil(10) };
            ferroflow::plot::write_digit_grid(&a.out, &images, n, s, s, cols.max(1), 4)?;
            wrote.push(a.out.display().to_string());
            a.out.with_extension("npy")
        }
        "npy" => a.out.clone(),
        _ => anyhow::bail!("{}: expected a .png (grid) or .npy output for digits", a.out.display()),
    };
    ferroflow::data::images_io::write_images_npy(&npy, &images, n, s, s)?;
    let stem = npy.file_stem().map(|x| x.to_string_lossy().into_owned()).unwrap_or_default();
    let labels_path = npy.with_file_name(format!("{stem}_labels.npy"));
    let written_labels = if a.uncond { vec![CLASSES; n] } else { labels };
    ferroflow::data::images_io::write_labels_npy(&labels_path, &written_labels)?;
    wrote.push(npy.display().to_string());
    wrote.push(labels_path.display().to_string());
    eprintln!(
        "{n} digits {s}×{s} in {secs:.1} s ({nfe} velocity evaluations, guidance w = {}); wrote {}",
        a.guidance,
        wrote.join(", ")
    );
    Ok(())
}
