//! `ferroflow eval`.

use anyhow::Result;

use super::common::{self, Reference};
use crate::args::EvalArgs;

pub fn run(a: EvalArgs) -> Result<()> {
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
