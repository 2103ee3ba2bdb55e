// The elementwise engine's functors and their operand contract, by name: the one place where the
// C++ functors (cpp/functors/*.h), their CUDA build and their JAX math (python/fromax/_functors.py)
// learn which streams, sums, results and coefficient columns a functor has, and in which order.
// C++ includes this file (cpp/functors/contract.h turns each entry into named indices: in::g,
// col::lr, ...); Python parses it at import (fromax/_contract.py reads FROMAX_CONTRACT,
// FROMAX_PROLOGUE_COLUMNS and FROMAX_PROLOGUE_TWINS, so keep their entries in the forms below, with
// plain identifiers). It lives in the Python package so that a wheel ships it next to the code that
// reads it; a kernel library built from another version of it is refused at import.
//
//   REDUCE(name, Functor, (inputs), (sums), (columns))     target fromax_<name>: per-tensor sums; a sum
//       named *_norm is a 2-norm instead: its term is the element's value, the result sqrt(sum of
//       squares), accumulated in f64 for f32/bf16/f16 data (no underflow or overflow in the squares)
//   UPDATE(name, Functor, (inputs), (results), (columns))  target fromax_<name>: tensors out; each
//       result is named after the input stream it replaces. Result 0 replaces the parameter: it is
//       the parameter's increment; the fused step writes the parameter plus it.
//   FUSED(name, Functor, reduce, update, (columns))        target fromax_<name>: per tensor, the
//       reduce's sums, a Finish hook turning them and the columns into the update's row, the update
//
// FROMAX_PROLOGUE_TWINS lists <name>_pre: functor <name> with the gradient prologue folded in
// (cpp/functors/prologue.h): its columns are <name>'s, then FROMAX_PROLOGUE_COLUMNS.
#pragma once

// clang-format off
#define FROMAX_CONTRACT(REDUCE, UPDATE, FUSED) \
  REDUCE(fromage_sums, FromageSums, (g, p), (p_norm, g_norm, pg), ()) \
  UPDATE(axpby, Axpby, (g, p), (p), (a, b)) \
  FUSED(fromage, Fromage, fromage_sums, axpby, (lr, p_bound, p0_norm, min_norm)) \
  REDUCE(lars_norms, LarsNorms, (g, p), (p_norm, u_norm), (wd)) \
  UPDATE(momentum, Momentum, (g, p, t), (p, t), (wd, scale, decay, nesterov)) \
  FUSED(lars, Lars, lars_norms, momentum, (wd, lr, trust_coefficient, eps, trust_mask, momentum, nesterov)) \
  REDUCE(lamb_norms, LambNorms, (g, p, m, v), (p_norm, u_norm), (b1, b2, eps, eps_root, cm, cg, bc2, wd)) \
  UPDATE(adamw, AdamW, (g, p, m, v), (p, m, v), (b1, b2, eps, eps_root, cm, cg, bc2, lr, wd)) \
  FUSED(lamb, Lamb, lamb_norms, adamw, (b1, b2, eps, eps_root, cm, cg, bc2, wd, lr)) \
  REDUCE(norm, Norm, (x), (x_norm), ()) \
  UPDATE(novograd, Novograd, (g, p, m), (p, m), (b1, den, wd, lr)) \
  FUSED(novograd_step, NovogradStep, norm, novograd, (nu, first, b1, b2, one_minus_b2, eps, eps_root, wd, lr)) \
  UPDATE(adamw_ema, AdamWEma, (g, p, m, v, e), (p, m, v, e), (b1, b2, eps, eps_root, cm, cg, bc2, lr, wd, e_decay, e_gain)) \
  REDUCE(hypergradient_sums, HypergradientSums, (g, m, v), (g_dprev, g_m, gg), (bc1, bc2, eps)) \
  REDUCE(surprise_sums, SurpriseSums, (g, m, v, e), (g_dprev, g_m, gg, rr), (bc1, bc2, eps)) \
  REDUCE(distance_norms, DistanceNorms, (g, p, x0), (d_norm, u_norm), (wd)) \
  UPDATE(scaled_sgd, ScaledSgd, (g, p), (p), (wd, scale)) \
  REDUCE(prodigy_sums, ProdigySums, (g, p, s, p0), (g_dist, s_abs), (beta3, d, k, d0)) \
  UPDATE(prodigy, Prodigy, (g, p, m, v, s), (p, m, v, s), (b1, b2, beta3, d, k, d0, dlr, wd, d_eps)) \
  REDUCE(dadapt_sums, DAdaptSums, (g, s, v), (g_s, s_abs), (eps, sb2, dlr)) \
  UPDATE(dadapt, DAdapt, (g, p, m, v, s), (p, m, v, s), (b1, b2, sb2, dlr, eps, wd, d_new)) \
  UPDATE(cocob, Cocob, (g, p, p0, grad_sum, max_grad, abs_grad_sum, reward), (p, grad_sum, max_grad, abs_grad_sum, reward), (lr, wd, alpha)) \
  REDUCE(mechanic_sums, MechanicSums, (g, p, x0), (g_norm, p_norm, g_delta, p_delta), ()) \
  UPDATE(mechanic, Mechanic, (p, x0, u), (p), (s_old_eps, s_new)) \
  REDUCE(momo_sums, MomoSums, (g, p, m), (gp, mm, mp), (bt)) \
  UPDATE(momo, Momo, (g, p, m), (p, m), (bt, cp, tau)) \
  REDUCE(momo_adam_sums, MomoAdamSums, (g, p, m, v), (mm_pre, gp, mp), (b1, b2, eps, bc2)) \
  UPDATE(momo_adam, MomoAdam, (g, p, m, v), (p, m, v), (b1, b2, eps, bc2, cp, tau)) \
  UPDATE(schedule_free, ScheduleFree, (y, z, u), (y, z), (b1, ck)) \
  UPDATE(schedule_free_sgd, ScheduleFreeSgd, (g, y, z), (y, z), (b1, ck, lr, wd)) \
  UPDATE(schedule_free_adamw, ScheduleFreeAdamW, (g, y, z, v), (y, z, v), (b1, ck, lr, wd, b2, eps, bc2)) \
  REDUCE(grad_norm, GradNorm, (g, p), (g_norm), ())

// g' = post_scale * clamp(pre_scale * g + pre_decay * p, -clip, clip) + post_decay * p
#define FROMAX_PROLOGUE_COLUMNS (pre_scale, pre_decay, clip, post_scale, post_decay)

#define FROMAX_PROLOGUE_TWINS(REDUCE, UPDATE) \
  REDUCE(grad_norm_pre, GradNormPre, grad_norm) \
  UPDATE(adamw_pre, AdamWPre, adamw) \
  REDUCE(lamb_norms_pre, LambNormsPre, lamb_norms) \
  REDUCE(lars_norms_pre, LarsNormsPre, lars_norms) \
  UPDATE(momentum_pre, MomentumPre, momentum) \
  UPDATE(novograd_pre, NovogradPre, novograd) \
  REDUCE(distance_norms_pre, DistanceNormsPre, distance_norms) \
  UPDATE(scaled_sgd_pre, ScaledSgdPre, scaled_sgd) \
  REDUCE(prodigy_sums_pre, ProdigySumsPre, prodigy_sums) \
  UPDATE(prodigy_pre, ProdigyPre, prodigy) \
  UPDATE(cocob_pre, CocobPre, cocob) \
  REDUCE(momo_sums_pre, MomoSumsPre, momo_sums) \
  UPDATE(momo_pre, MomoPre, momo) \
  REDUCE(momo_adam_sums_pre, MomoAdamSumsPre, momo_adam_sums) \
  UPDATE(momo_adam_pre, MomoAdamPre, momo_adam) \
  UPDATE(schedule_free_sgd_pre, ScheduleFreeSgdPre, schedule_free_sgd) \
  UPDATE(schedule_free_adamw_pre, ScheduleFreeAdamWPre, schedule_free_adamw)
// clang-format on
