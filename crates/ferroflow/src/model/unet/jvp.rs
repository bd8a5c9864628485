//! The U-Net's forward-mode derivative: the layer rules of [`crate::model::jvp_conv`] and
//! [`crate::model::jvp`] chained through the network.

use burn::nn::Linear;
use burn::tensor::{Tensor, backend::Backend};

use super::UNet;
use crate::model::field::Condition;
use crate::model::jvp::JvpField;
use crate::model::jvp_conv::{activation_jvp4, conv2d_jvp, group_norm_jvp, upsample_nearest2};
use crate::model::mlp::Activation;

/// A linear layer on a primal and an optional tangent (`None`: zero).
fn linear_opt<B: Backend>(
    l: &Linear<B>,
    x: Tensor<B, 2>,
    dx: Option<Tensor<B, 2>>,
) -> (Tensor<B, 2>, Option<Tensor<B, 2>>) {
    (l.forward(x), dx.map(|d| d.matmul(l.weight.val())))
}

/// SiLU on a primal and an optional tangent (`None`: zero).
fn silu_opt<B: Backend>(x: Tensor<B, 2>, dx: Option<Tensor<B, 2>>) -> (Tensor<B, 2>, Option<Tensor<B, 2>>) {
    match dx {
        Some(d) => {
            let (a, da) = Activation::Silu.jvp(x, d);
            (a, Some(da))
        }
        None => (Activation::Silu.apply(x), None),
    }
}

impl<B: Backend> UNet<B> {
    /// SiLU(emb) and its tangent along ṫ (`None` when ṫ = 0; class labels carry no tangent).
    fn embedding_jvp(
        &self,
        t: Tensor<B, 1>,
        cond: Option<&Condition<B>>,
        dt: Option<Tensor<B, 1>>,
    ) -> (Tensor<B, 2>, Option<Tensor<B, 2>>) {
        let [n] = t.dims();
        let (e, de) = match dt {
            Some(dt) => {
                let (e, de) = self.time_embedding.forward_jvp(t, dt);
                (e, Some(de))
            }
            None => (self.time_embedding.forward(t), None),
        };
        let (a, da) = linear_opt(&self.time_mlp_0, e, de);
        let (a, da) = silu_opt(a, da);
        let (mut emb, demb) = linear_opt(&self.time_mlp_2, a, da);
        if let Some(c) = self.class_rows(n, cond) {
            emb = emb + c;
        }
        silu_opt(emb, demb)
    }
}

impl<B: Backend> JvpField<B> for UNet<B> {
    /// The JVP by tangent propagation through every layer: convolutions (linear), GroupNorm,
    /// SiLU, attention, concatenations and upsampling ([`crate::model::jvp_conv`]), and the
    /// time embedding MLP. Costs about (1 + k) forward passes for k tangent blocks.
    fn forward_jvp(
        &self,
        x: Tensor<B, 2>,
        t: Tensor<B, 1>,
        cond: Option<&Condition<B>>,
        dx: Tensor<B, 2>,
        dt: Option<Tensor<B, 1>>,
    ) -> (Tensor<B, 2>, Tensor<B, 2>) {
        let [n, d] = x.dims();
        let [kn, _] = dx.dims();
        let c = &self.config;
        let (ch, hh, ww) = (c.channels, c.height, c.width);
        let (semb, dsemb) = self.embedding_jvp(t, cond, dt);
        let (mut h, mut dh) = conv2d_jvp(&self.conv_in, x.reshape([n, ch, hh, ww]), dx.reshape([kn, ch, hh, ww]));
        let mut hs = vec![(h.clone(), dh.clone())];
        for level in &self.down {
            for block in &level.res {
                (h, dh) = block.forward_jvp(h, dh, semb.clone(), dsemb.clone());
                hs.push((h.clone(), dh.clone()));
            }
            if let Some(ds) = &level.downsample {
                (h, dh) = conv2d_jvp(ds, h, dh);
                hs.push((h.clone(), dh.clone()));
            }
        }
        (h, dh) = self.mid.res1.forward_jvp(h, dh, semb.clone(), dsemb.clone());
        if let Some(attn) = &self.mid.attn {
            (h, dh) = attn.forward_jvp(h, dh);
        }
        (h, dh) = self.mid.res2.forward_jvp(h, dh, semb.clone(), dsemb.clone());
        for level in self.up.iter().rev() {
            for block in &level.res {
                let (s, ds) = hs.pop().expect("one skip per up block");
                let (hc, dhc) = (Tensor::cat(vec![h, s], 1), Tensor::cat(vec![dh, ds], 1));
                (h, dh) = block.forward_jvp(hc, dhc, semb.clone(), dsemb.clone());
            }
            if let Some(us) = &level.upsample {
                (h, dh) = conv2d_jvp(us, upsample_nearest2(h), upsample_nearest2(dh));
            }
        }
        let (a, da) = group_norm_jvp(&self.out_norm, h, dh);
        let (a, da) = activation_jvp4(Activation::Silu, a, da);
        let (v, dv) = conv2d_jvp(&self.out_conv, a, da);
        (v.reshape([n, d]), dv.reshape([kn, d]))
    }
}
