//! A session's settings as the page sends them: one flat JSON object, checked once here (every
//! bad value becomes a [`FieldError`] naming its control), then turned into the library's
//! typed configurations.
//!
//! Model settings (data, source, path, coupling, network, lr, batch, steps, seed,
//! `conditional`) restart training when they change; the sampler, NFE, g, guidance λ and CFG w
//! ([`LiveSettings`]) apply to the running model.

use ferroflow::coupling::CouplingConfig;
use ferroflow::data::{Points, World};
use ferroflow::model::{Activation, ConditionConfig, MlpFieldConfig};
use ferroflow::path::SchedulerConfig;
use ferroflow::solver::OdeMethod;
use ferroflow::train::TrainConfig;
use serde::Serialize;
use serde_json::{Map, Value};

/// Most points a drawn or uploaded target may hold.
pub const MAX_POINTS: usize = 100_000;
/// Widest hidden layer accepted.
pub const MAX_WIDTH: usize = 4096;
/// Most hidden layers accepted.
pub const MAX_DEPTH: usize = 16;
/// Most training steps accepted.
pub const MAX_STEPS: u64 = 1_000_000;
/// Most velocity evaluations a sample may cost.
pub const MAX_NFE: usize = 1000;
/// Largest batch accepted.
pub const MAX_BATCH: usize = 8192;
/// Size of the class embedding of a conditional model (CFG).
pub const D_CLASS_EMBED: usize = 16;
/// Label dropout of a conditional model: the share of batches' labels replaced by the null
/// class, so the same network also learns the unconditional field (Ho & Salimans 2022, §3.2).
pub const LABEL_DROPOUT: f64 = 0.1;

/// A bad setting: which control, and what is wrong with it (HTTP 422).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct FieldError {
    /// The setting's key in the JSON object (the page shows the message beside it).
    pub field: String,
    /// What is wrong, in words, with the bad value.
    pub message: String,
}

impl FieldError {
    fn new(field: &str, message: impl Into<String>) -> Self {
        Self { field: field.to_string(), message: message.into() }
    }
}

/// The data the model learns (p₁).
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// A named 2D world.
    World(World),
    /// Points drawn on the page or read from a CSV.
    Drawn(Points),
}

/// The path's scheduler, as the page names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SchedulerKind {
    /// CondOT with σ_min.
    CondOt,
    /// Polynomial tⁿ.
    Polynomial,
    /// VP, linear β.
    Vp,
    /// VE.
    Ve,
    /// Cosine.
    Cosine,
}

/// How samples are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SamplerKind {
    /// A fixed-step Runge–Kutta method.
    Fixed(OdeMethod),
    /// Adaptive Dormand–Prince (atol = rtol = 1e-4).
    Dopri5,
    /// Euler–Maruyama on the marginal-preserving SDE with constant g.
    Sde,
}

impl SamplerKind {
    /// The name the page uses.
    pub fn name(self) -> &'static str {
        match self {
            SamplerKind::Fixed(m) => m.name(),
            SamplerKind::Dopri5 => "dopri5",
            SamplerKind::Sde => "sde",
        }
    }
}

/// The settings that apply to a trained model without retraining.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LiveSettings {
    /// The sampler.
    pub sampler: SamplerKind,
    /// Velocity evaluations per sample (fixed-step: steps = nfe / evaluations a step).
    pub nfe: usize,
    /// g of the SDE sampler.
    pub sde_g: f64,
    /// Divergence-guidance strength λ (0: off).
    pub guidance: f64,
    /// Classifier-free guidance weight w: v = (1 + w)·v(x|c) − w·v(x|∅), as `ferroflow sample
    /// --cfg w` (0: plain conditional; only for conditional models).
    pub cfg_w: f64,
}

/// Every setting of a session, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The data.
    pub target: Target,
    /// The source world (p₀); `gaussian` is N(0, σ₀² I) with the scheduler's σ₀.
    pub source: World,
    /// The scheduler.
    pub scheduler: SchedulerKind,
    /// σ_min of CondOT.
    pub sigma_min: f64,
    /// n of the polynomial scheduler.
    pub poly_n: f64,
    /// The coupling's kind.
    pub coupling: CouplingKind,
    /// Sinkhorn's relative ε.
    pub epsilon: f64,
    /// Hidden width.
    pub width: usize,
    /// Hidden layers.
    pub depth: usize,
    /// The activation.
    pub activation: Activation,
    /// Peak learning rate.
    pub lr: f64,
    /// Pairs per step.
    pub batch: usize,
    /// Total steps.
    pub steps: u64,
    /// Seed of the weights, of the batches and of the particles' x₀.
    pub seed: u64,
    /// Train a class-conditional model (labelled worlds only) for CFG.
    pub conditional: bool,
    /// Sampler, NFE, g, λ, w.
    pub live: LiveSettings,
}

/// The couplings the page offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CouplingKind {
    /// Independent.
    Independent,
    /// Exact minibatch OT.
    ExactOt,
    /// Entropic OT.
    Sinkhorn,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            target: Target::World(World::Moons),
            source: World::Gaussian,
            scheduler: SchedulerKind::CondOt,
            sigma_min: 0.0,
            poly_n: 2.0,
            coupling: CouplingKind::Independent,
            epsilon: 0.05,
            width: 256,
            depth: 3,
            activation: Activation::Silu,
            lr: 1e-3,
            batch: 256,
            steps: 20_000,
            seed: 0,
            conditional: false,
            live: LiveSettings {
                sampler: SamplerKind::Fixed(OdeMethod::Euler),
                nfe: 32,
                sde_g: 0.5,
                guidance: 0.0,
                cfg_w: 0.0,
            },
        }
    }
}

/// The keys [`Settings::from_json`] reads.
pub const KEYS: [&str; 22] = [
    "target",
    "points",
    "csv",
    "source",
    "scheduler",
    "sigma_min",
    "poly_n",
    "coupling",
    "epsilon",
    "width",
    "depth",
    "activation",
    "lr",
    "batch",
    "steps",
    "seed",
    "conditional",
    "sampler",
    "nfe",
    "sde_g",
    "guidance",
    "cfg_w",
];

fn show(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 40 { format!("{}…", &s[..s.floor_char_boundary(40)]) } else { s }
}

fn number(obj: &Map<String, Value>, key: &str, default: f64) -> Result<f64, FieldError> {
    match obj.get(key) {
        None => Ok(default),
        Some(Value::Number(n)) => n.as_f64().ok_or_else(|| FieldError::new(key, format!("{key} is not a number"))),
        // Text boxes send strings: accept numbers written as text.
        Some(Value::String(s)) => match s.trim().parse::<f64>() {
            Ok(v) => Ok(v),
            Err(_) => Err(FieldError::new(key, format!("{key} must be a number (got \"{s}\")"))),
        },
        Some(v) => Err(FieldError::new(key, format!("{key} must be a number (got {})", show(v)))),
    }
}

fn integer(obj: &Map<String, Value>, key: &str, default: u64, lo: u64, hi: u64) -> Result<u64, FieldError> {
    let v = number(obj, key, default as f64)?;
    if !(v.is_finite() && v.fract() == 0.0 && v >= lo as f64 && v <= hi as f64) {
        return Err(FieldError::new(key, format!("{key} must be a whole number in {lo}..={hi} (got {v})")));
    }
    Ok(v as u64)
}

fn text<'a>(obj: &'a Map<String, Value>, key: &str, default: &'a str) -> Result<&'a str, FieldError> {
    match obj.get(key) {
        None => Ok(default),
        Some(Value::String(s)) => Ok(s),
        Some(v) => Err(FieldError::new(key, format!("{key} must be a string (got {})", show(v)))),
    }
}

fn world(key: &str, name: &str) -> Result<World, FieldError> {
    name.parse::<World>().map_err(|_| {
        FieldError::new(key, format!("unknown world \"{name}\"; valid: {}", World::ALL.map(|w| w.name()).join(", ")))
    })
}

/// Checks a drawn or uploaded point set: 2..=100 000 points, every coordinate finite.
///
/// # Errors
/// [`FieldError`] on `points`.
pub fn check_points(p: &Points) -> Result<(), FieldError> {
    if p.n < 2 {
        return Err(FieldError::new("points", format!("draw at least 2 points (you have {})", p.n)));
    }
    if p.n > MAX_POINTS {
        return Err(FieldError::new("points", format!("at most {MAX_POINTS} points (you have {})", p.n)));
    }
    if let Some(i) = p.data.iter().position(|v| !v.is_finite()) {
        return Err(FieldError::new(
            "points",
            format!("point {} has a non-finite coordinate ({})", i / 2 + 1, p.data[i]),
        ));
    }
    Ok(())
}

fn drawn_points(obj: &Map<String, Value>) -> Result<Points, FieldError> {
    if let Some(csv) = obj.get("csv") {
        let Value::String(s) = csv else { return Err(FieldError::new("csv", "csv must be a string of x,y rows")) };
        let p = ferroflow::data::io::parse_csv(s.as_bytes(), std::path::Path::new("upload.csv"))
            .map_err(|e| FieldError::new("csv", e.to_string()))?;
        if p.dim != 2 {
            return Err(FieldError::new("csv", format!("the CSV has {} columns; 2 are needed (x,y)", p.dim)));
        }
        return Ok(p);
    }
    let list = match obj.get("points") {
        None => &Vec::new(),
        Some(Value::Array(a)) => a,
        Some(v) => return Err(FieldError::new("points", format!("points must be a list of [x, y] (got {})", show(v)))),
    };
    if list.len() > MAX_POINTS {
        return Err(FieldError::new("points", format!("at most {MAX_POINTS} points (you have {})", list.len())));
    }
    let mut data = Vec::with_capacity(2 * list.len());
    for (i, p) in list.iter().enumerate() {
        let xy = p.as_array().filter(|a| a.len() == 2).and_then(|a| Some([a[0].as_f64()?, a[1].as_f64()?]));
        let Some([x, y]) = xy else {
            return Err(FieldError::new("points", format!("point {} is not [x, y] (got {})", i + 1, show(p))));
        };
        data.extend([x as f32, y as f32]);
    }
    let n = list.len();
    Ok(Points { data, n, dim: 2 })
}

impl Settings {
    /// Reads the page's JSON object; absent keys take the defaults.
    ///
    /// # Errors
    /// [`FieldError`] naming the first bad or unknown key.
    pub fn from_json(v: &Value) -> Result<Self, FieldError> {
        let empty = Map::new();
        let obj = match v {
            Value::Object(o) => o,
            Value::Null => &empty,
            other => {
                return Err(FieldError::new("", format!("the settings must be a JSON object (got {})", show(other))));
            }
        };
        if let Some(k) = obj.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(FieldError::new(k, format!("unknown setting \"{k}\"; valid: {}", KEYS.join(", "))));
        }
        let d = Settings::default();
        let target = match text(obj, "target", "moons")? {
            "drawn" => {
                let p = drawn_points(obj)?;
                check_points(&p)?;
                Target::Drawn(p)
            }
            name => Target::World(world("target", name).map_err(|mut e| {
                e.message.push_str(", drawn");
                e
            })?),
        };
        let source = world("source", text(obj, "source", "gaussian")?)?;
        let scheduler = match text(obj, "scheduler", "cond_ot")? {
            "cond_ot" => SchedulerKind::CondOt,
            "polynomial" => SchedulerKind::Polynomial,
            "vp" => SchedulerKind::Vp,
            "ve" => SchedulerKind::Ve,
            "cosine" => SchedulerKind::Cosine,
            s => {
                return Err(FieldError::new(
                    "scheduler",
                    format!("unknown scheduler \"{s}\"; valid: cond_ot, polynomial, vp, ve, cosine"),
                ));
            }
        };
        let sigma_min = number(obj, "sigma_min", d.sigma_min)?;
        if !(0.0..1.0).contains(&sigma_min) {
            return Err(FieldError::new("sigma_min", format!("sigma_min must be in [0, 1) (got {sigma_min})")));
        }
        let poly_n = number(obj, "poly_n", d.poly_n)?;
        if !(0.25..=8.0).contains(&poly_n) {
            return Err(FieldError::new("poly_n", format!("poly_n must be in [0.25, 8] (got {poly_n})")));
        }
        let coupling = match text(obj, "coupling", "independent")? {
            "independent" => CouplingKind::Independent,
            "exact_ot" => CouplingKind::ExactOt,
            "sinkhorn" => CouplingKind::Sinkhorn,
            s => {
                return Err(FieldError::new(
                    "coupling",
                    format!("unknown coupling \"{s}\"; valid: independent, exact_ot, sinkhorn"),
                ));
            }
        };
        let epsilon = number(obj, "epsilon", d.epsilon)?;
        if !(epsilon > 0.0 && epsilon <= 100.0) {
            return Err(FieldError::new("epsilon", format!("epsilon must be in (0, 100] (got {epsilon})")));
        }
        let width = number(obj, "width", d.width as f64)?;
        if !(width.fract() == 0.0 && (1.0..=MAX_WIDTH as f64).contains(&width)) {
            return Err(FieldError::new(
                "width",
                format!("width must be a whole number in 1..={MAX_WIDTH} (got {width})"),
            ));
        }
        let depth = integer(obj, "depth", d.depth as u64, 1, MAX_DEPTH as u64)? as usize;
        let act = text(obj, "activation", "silu")?;
        let activation = Activation::ALL.into_iter().find(|a| a.name() == act).ok_or_else(|| {
            FieldError::new(
                "activation",
                format!("unknown activation \"{act}\"; valid: {}", Activation::ALL.map(|a| a.name()).join(", ")),
            )
        })?;
        let lr = number(obj, "lr", d.lr)?;
        if !(lr > 0.0 && lr <= 1.0) {
            return Err(FieldError::new("lr", format!("lr must be a number in (0, 1] (got {lr})")));
        }
        let batch = integer(obj, "batch", d.batch as u64, 2, MAX_BATCH as u64)? as usize;
        let steps = number(obj, "steps", d.steps as f64)?;
        if !(steps.fract() == 0.0 && (1.0..=MAX_STEPS as f64).contains(&steps)) {
            return Err(FieldError::new("steps", format!("steps must be a whole number in 1..=1000000 (got {steps})")));
        }
        let seed = integer(obj, "seed", d.seed, 0, u32::MAX as u64)?;
        let conditional = match obj.get("conditional") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(v) => {
                return Err(FieldError::new(
                    "conditional",
                    format!("conditional must be true or false (got {})", show(v)),
                ));
            }
        };
        if conditional {
            let classes = match &target {
                Target::World(w) => w.n_classes(),
                Target::Drawn(_) => 1,
            };
            if classes < 2 {
                return Err(FieldError::new(
                    "conditional",
                    "CFG needs a labelled world (moons, 8gaussians, checkerboard, spirals)",
                ));
            }
        }
        let sampler = match text(obj, "sampler", "euler")? {
            "dopri5" => SamplerKind::Dopri5,
            // The score comes from the velocity through the Gaussian path's formula: with
            // another source the SDE would not keep the marginals.
            "sde" if source != World::Gaussian => {
                return Err(FieldError::new(
                    "sampler",
                    format!(
                        "the SDE sampler needs the gaussian source (its score is the Gaussian path's; the source is {})",
                        source.name()
                    ),
                ));
            }
            "sde" => SamplerKind::Sde,
            "meanflow" => return Err(FieldError::new("sampler", "needs MeanFlow (not yet in ferroflow)")),
            s => SamplerKind::Fixed(s.parse::<OdeMethod>().map_err(|_| {
                FieldError::new(
                    "sampler",
                    format!("unknown sampler \"{s}\"; valid: euler, midpoint, heun, rk4, dopri5, sde"),
                )
            })?),
        };
        let nfe = number(obj, "nfe", d.live.nfe as f64)?;
        if !(nfe.fract() == 0.0 && (1.0..=MAX_NFE as f64).contains(&nfe)) {
            return Err(FieldError::new("nfe", format!("nfe must be a whole number in 1..={MAX_NFE} (got {nfe})")));
        }
        let sde_g = number(obj, "sde_g", d.live.sde_g)?;
        if !(0.0..=10.0).contains(&sde_g) {
            return Err(FieldError::new("sde_g", format!("sde_g must be in [0, 10] (got {sde_g})")));
        }
        let guidance = number(obj, "guidance", 0.0)?;
        if !(-10.0..=10.0).contains(&guidance) {
            return Err(FieldError::new("guidance", format!("guidance λ must be in [-10, 10] (got {guidance})")));
        }
        let cfg_w = number(obj, "cfg_w", 0.0)?;
        if !(0.0..=20.0).contains(&cfg_w) {
            return Err(FieldError::new("cfg_w", format!("cfg_w must be in [0, 20] (got {cfg_w})")));
        }
        if cfg_w != 0.0 && !conditional {
            return Err(FieldError::new(
                "cfg_w",
                "CFG w needs a class-conditional model (train with conditional on a labelled world)",
            ));
        }
        Ok(Settings {
            target,
            source,
            scheduler,
            sigma_min,
            poly_n,
            coupling,
            epsilon,
            width: width as usize,
            depth,
            activation,
            lr,
            batch,
            steps: steps as u64,
            seed,
            conditional,
            live: LiveSettings { sampler, nfe: nfe as usize, sde_g, guidance, cfg_w },
        })
    }

    /// The settings as the page's JSON object (drawn points included).
    pub fn to_json(&self) -> Value {
        let mut o = serde_json::json!({
            "source": self.source.name(),
            "scheduler": self.scheduler,
            "sigma_min": self.sigma_min,
            "poly_n": self.poly_n,
            "coupling": self.coupling,
            "epsilon": self.epsilon,
            "width": self.width,
            "depth": self.depth,
            "activation": self.activation.name(),
            "lr": self.lr,
            "batch": self.batch,
            "steps": self.steps,
            "seed": self.seed,
            "conditional": self.conditional,
            "sampler": self.live.sampler.name(),
            "nfe": self.live.nfe,
            "sde_g": self.live.sde_g,
            "guidance": self.live.guidance,
            "cfg_w": self.live.cfg_w,
        });
        match &self.target {
            Target::World(w) => o["target"] = w.name().into(),
            Target::Drawn(p) => {
                o["target"] = "drawn".into();
                o["points"] = p.data.chunks(2).map(|c| serde_json::json!([c[0], c[1]])).collect();
            }
        }
        o
    }

    /// Whether `other` trains the same model (only live settings differ).
    pub fn same_model(&self, other: &Settings) -> bool {
        Settings { live: self.live, ..other.clone() } == *self
    }

    /// The library's scheduler.
    pub fn scheduler_config(&self) -> SchedulerConfig {
        match self.scheduler {
            SchedulerKind::CondOt => SchedulerConfig::CondOt { sigma_min: self.sigma_min },
            SchedulerKind::Polynomial => SchedulerConfig::Polynomial { n: self.poly_n },
            SchedulerKind::Vp => SchedulerConfig::VpLinearBeta { beta_min: 0.1, beta_max: 20.0 },
            SchedulerKind::Ve => SchedulerConfig::Ve {
                sigma_min: ferroflow::path::scheduler::VE_SIGMA_MIN,
                sigma_max: ferroflow::path::scheduler::VE_SIGMA_MAX,
            },
            SchedulerKind::Cosine => SchedulerConfig::Cosine,
        }
    }

    /// Number of classes of a conditional model's data (None: unconditional).
    pub fn n_classes(&self) -> Option<u32> {
        match (&self.target, self.conditional) {
            (Target::World(w), true) => Some(w.n_classes()),
            _ => None,
        }
    }

    /// The network.
    pub fn model_config(&self) -> MlpFieldConfig {
        MlpFieldConfig {
            d_hidden: self.width,
            n_hidden: self.depth,
            activation: self.activation,
            condition: match self.n_classes() {
                Some(k) => ConditionConfig::Class { n_classes: k as usize, d_embed: D_CLASS_EMBED },
                None => ConditionConfig::None,
            },
            ..MlpFieldConfig::default()
        }
    }

    /// Training (the CLI's defaults otherwise: Adam, constant lr, EMA 0.999, the fused engine).
    pub fn train_config(&self) -> TrainConfig {
        TrainConfig {
            seed: self.seed,
            steps: self.steps,
            batch_size: self.batch,
            lr: self.lr,
            scheduler: self.scheduler_config(),
            coupling: match self.coupling {
                CouplingKind::Independent => CouplingConfig::Independent,
                CouplingKind::ExactOt => CouplingConfig::ExactOt,
                CouplingKind::Sinkhorn => {
                    CouplingConfig::Sinkhorn { epsilon: self.epsilon, max_iters: 1000, tol: 1e-6 }
                }
            },
            label_dropout: if self.conditional { LABEL_DROPOUT } else { 0.0 },
            ..TrainConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn settings_round_trip_through_the_pages_json() {
        let s = Settings::from_json(&json!({"target": "drawn", "points": [[0, 1], [2.5, -1]], "lr": "3e-4",
            "coupling": "sinkhorn", "epsilon": 0.2, "sampler": "rk4", "nfe": 40, "conditional": false}))
        .unwrap();
        assert_eq!(s.lr, 3e-4);
        assert_eq!(s.live.sampler, SamplerKind::Fixed(OdeMethod::Rk4));
        let back = Settings::from_json(&s.to_json()).unwrap();
        assert_eq!(back, s);
        assert!(s.same_model(&Settings { live: LiveSettings { nfe: 8, ..s.live }, ..s.clone() }));
        assert!(!s.same_model(&Settings { lr: 1e-2, ..s.clone() }));
    }

    #[test]
    fn each_bad_setting_names_its_field_and_value() {
        let cases = [
            (json!({"target": "drawn", "points": [[0, 1]]}), "points", "draw at least 2 points (you have 1)"),
            (json!({"target": "drawn"}), "points", "draw at least 2 points (you have 0)"),
            (json!({"lr": 1e9}), "lr", "lr must be a number in (0, 1] (got 1000000000)"),
            (json!({"lr": 0}), "lr", "lr must be a number in (0, 1] (got 0)"),
            (json!({"lr": "abc"}), "lr", "lr must be a number (got \"abc\")"),
            (json!({"width": 0}), "width", "width must be a whole number in 1..=4096 (got 0)"),
            (json!({"width": 5000}), "width", "width must be a whole number in 1..=4096 (got 5000)"),
            (json!({"steps": 0}), "steps", "steps must be a whole number in 1..=1000000 (got 0)"),
            (json!({"nfe": 1001}), "nfe", "nfe must be a whole number in 1..=1000 (got 1001)"),
            (
                json!({"target": "drawn", "csv": "0,1\nnan,2\n"}),
                "csv",
                "upload.csv: line 2, column 1: value NaN is not a finite f32",
            ),
            (json!({"sampler": "meanflow"}), "sampler", "needs MeanFlow (not yet in ferroflow)"),
            (json!({"sampler": "sde", "source": "8gaussians"}), "sampler", "the SDE sampler needs the gaussian source"),
            (json!({"conditional": true, "target": "ring"}), "conditional", "CFG needs a labelled world"),
            (json!({"cfg_w": 2}), "cfg_w", "CFG w needs a class-conditional model"),
        ];
        for (body, field, msg) in cases {
            let e = Settings::from_json(&body).unwrap_err();
            assert_eq!(e.field, field, "{body}");
            assert!(e.message.starts_with(msg), "{body}: {}", e.message);
        }
        let e = Settings::from_json(&json!({"target": "moon"})).unwrap_err();
        assert_eq!(
            e.message,
            "unknown world \"moon\"; valid: gaussian, ring, moons, 8gaussians, checkerboard, spirals, swiss_roll, drawn"
        );
        let many: Vec<_> = (0..100_001).map(|i| json!([i, 0])).collect();
        let e = Settings::from_json(&json!({"target": "drawn", "points": many})).unwrap_err();
        assert_eq!(e.message, "at most 100000 points (you have 100001)");
    }
}
