//! The dropnas operations on Burn's autodiff backend: one graph node per operation, whose
//! backward asks the inner backend for the gradients.

use super::{DepthwiseOptions, DropnasBackend, PoolKind};
use burn::backend::Autodiff;
use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::ops::FloatTensor;

impl<B: DropnasBackend, C: CheckpointStrategy> DropnasBackend for Autodiff<B, C> {
    fn depthwise_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        options: DepthwiseOptions,
    ) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct DepthwiseBackward;

        impl<B: DropnasBackend> Backward<B, 2> for DepthwiseBackward {
            type State = (NodeId, NodeId, DepthwiseOptions);

            fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
                let [node_x, node_w] = ops.parents;
                let grad = grads.consume::<B>(&ops.node);
                let (x_state, w_state, options) = ops.state;
                let x = checkpointer.retrieve_node_output::<FloatTensor<B>>(x_state);
                let w = checkpointer.retrieve_node_output::<FloatTensor<B>>(w_state);
                let (dx, dw) = B::depthwise_conv2d_backward(x, w, grad, options);
                if let Some(node) = node_x {
                    grads.register::<B>(node.id, dx);
                }
                if let Some(node) = node_w {
                    grads.register::<B>(node.id, dw);
                }
            }
        }

        match DepthwiseBackward.prepare::<C>([x.node.clone(), weight.node.clone()]).compute_bound().stateful() {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let w_state = prep.checkpoint(&weight);
                let out = B::depthwise_conv2d(x.primitive, weight.primitive, options);
                prep.finish((x_state, w_state, options), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::depthwise_conv2d(x.primitive, weight.primitive, options)),
        }
    }

    fn batch_norm_train(
        x: FloatTensor<Self>,
        gamma: Option<FloatTensor<Self>>,
        beta: Option<FloatTensor<Self>>,
        eps: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        /// State: input, gamma, batch mean, batch variance, epsilon.
        type BnState<B> = (FloatTensor<B>, Option<FloatTensor<B>>, FloatTensor<B>, FloatTensor<B>, f64);

        #[derive(Debug)]
        struct BatchNormAffineBackward;

        impl<B: DropnasBackend> Backward<B, 3> for BatchNormAffineBackward {
            type State = BnState<B>;

            fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
                let [node_x, node_gamma, node_beta] = ops.parents;
                let grad = grads.consume::<B>(&ops.node);
                let (x, gamma, mean, var, eps) = ops.state;
                let (dx, dgamma, dbeta) = B::batch_norm_train_backward(x, gamma, mean, var, grad, eps);
                if let Some(node) = node_x {
                    grads.register::<B>(node.id, dx);
                }
                if let (Some(node), Some(d)) = (node_gamma, dgamma) {
                    grads.register::<B>(node.id, d);
                }
                if let (Some(node), Some(d)) = (node_beta, dbeta) {
                    grads.register::<B>(node.id, d);
                }
            }
        }

        /// Without affine parameters the output is the normalised input: the state keeps the
        /// output (which the next op keeps too) instead of the input.
        #[derive(Debug)]
        struct BatchNormBackward;

        impl<B: DropnasBackend> Backward<B, 1> for BatchNormBackward {
            type State = (FloatTensor<B>, FloatTensor<B>, f64);

            fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
                let [node_x] = ops.parents;
                let grad = grads.consume::<B>(&ops.node);
                let (xhat, var, eps) = ops.state;
                if let Some(node) = node_x {
                    grads.register::<B>(node.id, B::batch_norm_normalized_backward(xhat, var, grad, eps));
                }
            }
        }

        // The batch statistics leave the graph: they only feed the running estimates.
        let stat = |t: FloatTensor<B>| <Autodiff<B, C> as AutodiffBackend>::from_inner(t);
        match (gamma, beta) {
            (Some(gamma), Some(beta)) => {
                let prep = BatchNormAffineBackward
                    .prepare::<C>([x.node.clone(), gamma.node.clone(), beta.node.clone()])
                    .compute_bound()
                    .stateful();
                let (y, mean, var) =
                    B::batch_norm_train(x.primitive.clone(), Some(gamma.primitive.clone()), Some(beta.primitive), eps);
                let out = match prep {
                    OpsKind::Tracked(prep) => {
                        prep.finish((x.primitive, Some(gamma.primitive), mean.clone(), var.clone(), eps), y)
                    }
                    OpsKind::UnTracked(prep) => prep.finish(y),
                };
                (out, stat(mean), stat(var))
            }
            _ => {
                let prep = BatchNormBackward.prepare::<C>([x.node.clone()]).compute_bound().stateful();
                let (y, mean, var) = B::batch_norm_train(x.primitive, None, None, eps);
                let out = match prep {
                    OpsKind::Tracked(prep) => prep.finish((y.clone(), var.clone(), eps), y),
                    OpsKind::UnTracked(prep) => prep.finish(y),
                };
                (out, stat(mean), stat(var))
            }
        }
    }

    fn relu_dw_pw(
        x: FloatTensor<Self>,
        dw_weight: FloatTensor<Self>,
        pw_weight: FloatTensor<Self>,
        options: DepthwiseOptions,
        relu: bool,
    ) -> FloatTensor<Self> {
        /// Keeps the three inputs only; the backward recomputes the ReLU and the depthwise output.
        #[derive(Debug)]
        struct ReluDwPwBackward;

        impl<B: DropnasBackend> Backward<B, 3> for ReluDwPwBackward {
            type State = (NodeId, NodeId, NodeId, DepthwiseOptions, bool);

            fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
                let [node_x, node_dw, node_pw] = ops.parents;
                let grad = grads.consume::<B>(&ops.node);
                let (x_state, dw_state, pw_state, options, relu) = ops.state;
                let x = checkpointer.retrieve_node_output::<FloatTensor<B>>(x_state);
                let dw = checkpointer.retrieve_node_output::<FloatTensor<B>>(dw_state);
                let pw = checkpointer.retrieve_node_output::<FloatTensor<B>>(pw_state);
                let (dx, ddw, dpw) = B::relu_dw_pw_backward(x, dw, pw, grad, options, relu);
                for (node, g) in [(node_x, dx), (node_dw, ddw), (node_pw, dpw)] {
                    if let Some(node) = node {
                        grads.register::<B>(node.id, g);
                    }
                }
            }
        }

        let parents = [x.node.clone(), dw_weight.node.clone(), pw_weight.node.clone()];
        match ReluDwPwBackward.prepare::<C>(parents).compute_bound().stateful() {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let dw_state = prep.checkpoint(&dw_weight);
                let pw_state = prep.checkpoint(&pw_weight);
                let out = B::relu_dw_pw(x.primitive, dw_weight.primitive, pw_weight.primitive, options, relu);
                prep.finish((x_state, dw_state, pw_state, options, relu), out)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(B::relu_dw_pw(x.primitive, dw_weight.primitive, pw_weight.primitive, options, relu))
            }
        }
    }

    fn relu_pointwise(x: FloatTensor<Self>, pw_weight: FloatTensor<Self>, relu: bool) -> FloatTensor<Self> {
        /// Keeps the two inputs only; the backward recomputes the ReLU.
        #[derive(Debug)]
        struct ReluPointwiseBackward;

        impl<B: DropnasBackend> Backward<B, 2> for ReluPointwiseBackward {
            type State = (NodeId, NodeId, bool);

            fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
                let [node_x, node_pw] = ops.parents;
                let grad = grads.consume::<B>(&ops.node);
                let (x_state, pw_state, relu) = ops.state;
                let x = checkpointer.retrieve_node_output::<FloatTensor<B>>(x_state);
                let pw = checkpointer.retrieve_node_output::<FloatTensor<B>>(pw_state);
                let (dx, dpw) = B::relu_pointwise_backward(x, pw, grad, relu);
                for (node, g) in [(node_x, dx), (node_pw, dpw)] {
                    if let Some(node) = node {
                        grads.register::<B>(node.id, g);
                    }
                }
            }
        }

        match ReluPointwiseBackward.prepare::<C>([x.node.clone(), pw_weight.node.clone()]).compute_bound().stateful() {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let pw_state = prep.checkpoint(&pw_weight);
                let out = B::relu_pointwise(x.primitive, pw_weight.primitive, relu);
                prep.finish((x_state, pw_state, relu), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::relu_pointwise(x.primitive, pw_weight.primitive, relu)),
        }
    }

    fn pool3x3(x: FloatTensor<Self>, kind: PoolKind, stride: usize) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct PoolBackward;

        impl<B: DropnasBackend> Backward<B, 1> for PoolBackward {
            type State = (NodeId, PoolKind, usize);

            fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
                let [node_x] = ops.parents;
                let grad = grads.consume::<B>(&ops.node);
                let (x_state, kind, stride) = ops.state;
                let x = checkpointer.retrieve_node_output::<FloatTensor<B>>(x_state);
                if let Some(node) = node_x {
                    grads.register::<B>(node.id, B::pool3x3_backward(x, grad, kind, stride));
                }
            }
        }

        match PoolBackward.prepare::<C>([x.node.clone()]).compute_bound().stateful() {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let out = B::pool3x3(x.primitive, kind, stride);
                prep.finish((x_state, kind, stride), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::pool3x3(x.primitive, kind, stride)),
        }
    }

    fn dense_grad(x: FloatTensor<Self>) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct DenseGradBackward;

        impl<B: DropnasBackend> Backward<B, 1> for DenseGradBackward {
            type State = ();

            fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
                let [node_x] = ops.parents;
                let grad = grads.consume::<B>(&ops.node);
                if let Some(node) = node_x {
                    grads.register::<B>(node.id, B::contiguous(grad));
                }
            }
        }

        let out = x.primitive.clone();
        DenseGradBackward.prepare::<C>([x.node.clone()]).compute_bound().stateless(out)
    }

    fn scale(y: FloatTensor<Self>, w: FloatTensor<Self>) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct ScaleBackward;

        impl<B: DropnasBackend> Backward<B, 2> for ScaleBackward {
            type State = (FloatTensor<B>, FloatTensor<B>);

            fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
                let [node_y, node_w] = ops.parents;
                let grad = grads.consume::<B>(&ops.node);
                let (y, w) = ops.state;
                let (dy, dw) = B::scale_backward(y, w, grad);
                if let Some(node) = node_y {
                    grads.register::<B>(node.id, dy);
                }
                if let Some(node) = node_w {
                    grads.register::<B>(node.id, dw);
                }
            }
        }

        match ScaleBackward.prepare::<C>([y.node.clone(), w.node.clone()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let out = B::scale(y.primitive.clone(), w.primitive.clone());
                prep.finish((y.primitive, w.primitive), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::scale(y.primitive, w.primitive)),
        }
    }
}
