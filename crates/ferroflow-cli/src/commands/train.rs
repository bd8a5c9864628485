//! `ferroflow train`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context as _, Result};
use ferroflow::checkpoint::Checkpoint;
use ferroflow::train::{Control, TrainEvent, Trainer};
use indicatif::{ProgressBar, ProgressStyle};

use super::common::{self, Reference};
use crate::args::TrainArgs;
use crate::config::{DataSpec, RunConfig};
use crate::with_backend;

pub fn run(a: TrainArgs) -> Result<()> {
    a.device.check()?;
    let budget = budget(a.minutes)?;
    let resumed = match &a.resume {
        Some(p) => Some(Checkpoint::read(p)?),
        None => None,
    };
    let resumes_digits = match &resumed {
        Some(ck) => super::digits::DigitRun::of(ck)?.is_some(),
        None => false,
    };
    if a.mnist.is_some() || resumes_digits {
        return super::digits::train(&a, a.mnist.clone().flatten().as_deref());
    }
    if a.size.is_some() || a.field.is_some() || a.channels.is_some() {
        anyhow::bail!("--size, --field and --channels apply to digits: add --mnist [DIR]");
    }
    let mut cfg = match (&a.config, &resumed) {
        (Some(p), _) => RunConfig::read(p)?,
        (None, Some(ck)) => common::run_config_of(ck)?,
        (None, None) => RunConfig::default(),
    };
    apply_overrides(&mut cfg, &a)?;
    let dim = cfg.data.target.dim()?.unwrap_or(2);
    cfg.model.d_input = dim;
    if let Some(sd) = cfg.data.source.dim()?
        && sd != dim
    {
        anyhow::bail!("the source has dimension {sd} but the data has {dim}");
    }
    let out = a.out.clone().unwrap_or_else(|| PathBuf::from("runs").join(cfg.data.target.name()));
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let ckpt_path = out.join("model.safetensors");

    let on_cpu = a.device == crate::device::Device::Cpu;
    with_backend!(a.device, |B, AB, device| {
        let mut trainer = match &resumed {
            Some(ck) => {
                let mut t = Trainer::<AB>::resume(ck, &device)?;
                if let Some(s) = a.steps {
                    t.set_total_steps(s);
                }
                cfg.model = *t.model_config();
                cfg.train = *t.config();
                t
            }
            None => Trainer::<AB>::new(cfg.model, cfg.train, &device)?,
        };
        trainer.run_info = serde_json::to_value(&cfg)?;
        cfg.write(&out.join("config.toml"))?;
        let mut source = cfg.data.source.open(dim)?;
        let mut target = cfg.data.target.open(dim)?;
        let reference = Reference::from_spec(&cfg.data.target)?;
        let total = cfg.train.steps;
        let bar = if a.quiet { ProgressBar::hidden() } else { ProgressBar::new(total) };
        bar.set_style(
            ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} steps  {msg}  ETA {eta}")
                .expect("static template")
                .progress_chars("=> "),
        );
        bar.set_position(trainer.step());
        let started = Instant::now();
        let first = trainer.step();
        let mut log = String::from("step,loss,lr\n");
        let mut eval_err = None;
        let samples = cfg.output.samples;
        let result = trainer.run(source.as_mut(), target.as_mut(), Some(&ckpt_path), cfg.output.eval_every, &mut |e| {
            match e {
                TrainEvent::Step { step, loss, lr } => {
                    log.push_str(&format!("{step},{loss},{lr}\n"));
                    if step % 20 == 0 || step == total {
                        bar.set_position(step);
                        bar.set_message(format!("loss {loss:.4}"));
                    }
                    if budget.is_some_and(|b| started.elapsed() >= b) {
                        return Control::Stop;
                    }
                }
                TrainEvent::Eval { step, model } if step < total && samples > 0 => {
                    match common::score_model::<B>(model, &cfg, &reference, &device, on_cpu) {
                        Ok(Some(r)) => {
                            let line = format!("step {step}: {}", common::describe(&r));
                            // A hidden bar (-q) swallows println: print it ourselves.
                            if bar.is_hidden() { eprintln!("{line}") } else { bar.println(line) }
                        }
                        Ok(None) => {}
                        Err(e) => {
                            eval_err = Some(e);
                            return Control::Stop;
                        }
                    }
                }
                _ => {}
            }
            Control::Continue
        });
        bar.finish_and_clear();
        ferroflow::checkpoint::write_atomic(&out.join("loss.csv"), log.as_bytes())
            .with_context(|| format!("cannot write {}", out.join("loss.csv").display()))?;
        if let Some(e) = eval_err {
            return Err(e);
        }
        result?;
        let secs = started.elapsed().as_secs_f64();
        let done = trainer.step() - first;
        eprintln!(
            "trained {done} steps in {secs:.1} s ({:.0} steps/s); checkpoint {}",
            done as f64 / secs.max(1e-9),
            ckpt_path.display()
        );
        if samples > 0 {
            let model = trainer.sampling_model();
            common::final_outputs::<B>(&model, &cfg, &reference, &out, &device, on_cpu)?;
        }
        Ok(())
    })
}

/// The `--minutes` budget as a duration.
pub fn budget(minutes: Option<f64>) -> Result<Option<std::time::Duration>> {
    match minutes {
        None => Ok(None),
        Some(m) if m > 0.0 && m <= 1e6 => Ok(Some(std::time::Duration::from_secs_f64(m * 60.0))),
        Some(m) => anyhow::bail!("--minutes {m}: expected a number of minutes > 0"),
    }
}

fn apply_overrides(cfg: &mut RunConfig, a: &TrainArgs) -> Result<()> {
    if let Some(w) = &a.data.world {
        w.parse::<ferroflow::data::World>()?;
        cfg.data.target = DataSpec::World(w.clone());
    }
    if let Some(f) = &a.data.data {
        cfg.data.target = DataSpec::File(f.clone());
    }
    if let Some(s) = &a.source {
        cfg.data.source = DataSpec::parse_source(s);
    }
    apply_train_overrides(&mut cfg.train, a)?;
    let m = &mut cfg.model;
    if let Some(v) = a.hidden {
        m.d_hidden = v;
    }
    if let Some(v) = a.layers {
        m.n_hidden = v;
    }
    if let Some(v) = a.samples {
        cfg.output.samples = v;
    }
    if let Some(v) = a.eval_every {
        cfg.output.eval_every = v;
    }
    Ok(())
}

/// The training flags shared by 2D and digit runs.
pub fn apply_train_overrides(t: &mut ferroflow::train::TrainConfig, a: &TrainArgs) -> Result<()> {
    if let Some(v) = a.steps {
        t.steps = v;
    }
    if let Some(v) = a.batch_size {
        t.batch_size = v;
    }
    if let Some(v) = a.lr {
        t.lr = v;
    }
    if let Some(v) = &a.coupling {
        t.coupling = v.parse()?;
    }
    if let Some(v) = &a.scheduler {
        t.scheduler = v.parse()?;
    }
    if let Some(v) = a.ema {
        t.ema_decay = (v != 0.0).then_some(v);
    }
    if let Some(v) = a.seed {
        t.seed = v;
    }
    if let Some(v) = &a.engine {
        t.engine = v.parse()?;
    }
    if let Some(v) = a.threads {
        t.threads = v;
    }
    if let Some(v) = a.checkpoint_every {
        t.checkpoint_every = v;
    }
    if let Some(v) = a.label_dropout {
        t.label_dropout = v;
    }
    Ok(())
}
