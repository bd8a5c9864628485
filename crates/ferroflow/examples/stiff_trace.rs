//! Where does a fixed-step Euler sample of a class-conditional digits MLP blow up? Integrates
//! 2,000 digits (200 a class, w = 0, seed 0) on the burn path and prints, every 5 steps and
//! whenever a trajectory has left the data range, max |v| and how many rows have |x| > 10.
//!
//! Run: `cargo run --release -p ferroflow --example stiff_trace -- CKPT [STEPS]`
//! (CKPT: a `ferroflow train --mnist --field mlp` checkpoint; STEPS default 100).

use burn::tensor::{Int, Tensor, TensorData};
use ferroflow::backend::Cpu;
use ferroflow::checkpoint::Checkpoint;
use ferroflow::model::{Condition, MlpFieldConfig, VelocityField};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: stiff_trace CKPT [STEPS]")?;
    let steps: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(100);
    let ck = Checkpoint::read(std::path::Path::new(&path))?;
    let dev = Default::default();
    let m = ferroflow::train::load_sampling_field::<Cpu, MlpFieldConfig>(&ck, &dev)?;
    let (n, d) = (2000usize, m.dim());
    let x0 = ferroflow::rng::normal_vec(&mut ferroflow::rng::seeded(0), n * d);
    let labels: Vec<i64> = (0..n as i64).map(|i| i / 200).collect();
    let c = Condition::Class(Tensor::<Cpu, 1, Int>::from_data(TensorData::new(labels, [n]), &dev));
    let mut x = Tensor::<Cpu, 2>::from_data(TensorData::new(x0, [n, d]), &dev);
    let h = 1.0 / steps as f32;
    for k in 0..steps {
        let t = Tensor::<Cpu, 1>::from_data(TensorData::new(vec![k as f32 * h; n], [n]), &dev);
        let v = m.velocity(x.clone(), t, Some(&c));
        let vh = v.clone().into_data().to_vec::<f32>().map_err(|e| format!("{e:?}"))?;
        let xh = x.clone().into_data().to_vec::<f32>().map_err(|e| format!("{e:?}"))?;
        let off = xh.chunks(d).filter(|r| r.iter().any(|a| a.abs() > 10.0 || !a.is_finite())).count();
        let vmax = vh.iter().fold(0.0f32, |a, b| a.max(b.abs()));
        if k % 5 == 0 || off > 0 {
            println!("step {k:3}  t {:.2}  max|v| {vmax:.3e}  rows with |x| > 10: {off}", k as f32 * h);
        }
        if off > 20 {
            break;
        }
        x = x + v.mul_scalar(h);
    }
    Ok(())
}
