// Every functor of the elementwise engine, as X-macro entries: REDUCE(name, Functor) for a reduce
// phase (target fromax_<name>: per-tensor sums), UPDATE(name, Functor) for an update phase (target
// fromax_<name>: tensors out), FUSED(name, Functor) for a per-tensor fused step (reduce, finish
// and update of each tensor in one call: target fromax_<name>). <name>_pre is <name> with the gradient prologue (prologue.h), for the
// optimizers that fold an optax.chain's gradient pre-processing into their own pass.
// cpp/family_handlers.cc defines a handler per entry, cpp/module.cc exports them, and
// python/fromax/_functors.py declares the same names with the same math.
#pragma once

#include "adam.h"
#include "cocob.h"
#include "dadapt.h"
#include "distance.h"
#include "fromage.h"
#include "layerwise.h"
#include "mechanic.h"
#include "momo.h"
#include "prologue.h"
#include "schedule_free.h"

namespace fromax::functors {
using GradSqPre = WithPrologue<GradSq>;
using AdamWPre = WithPrologue<AdamW>;
using LambNormsPre = WithPrologue<LambNorms>;
using LarsNormsPre = WithPrologue<LarsNorms>;
using MomentumPre = WithPrologue<Momentum>;
using NovogradPre = WithPrologue<Novograd>;
using DistanceNormsPre = WithPrologue<DistanceNorms>;
using ScaledSgdPre = WithPrologue<ScaledSgd>;
using ProdigySumsPre = WithPrologue<ProdigySums>;
using ProdigyPre = WithPrologue<Prodigy>;
using CocobPre = WithPrologue<Cocob>;
using MomoSumsPre = WithPrologue<MomoSums>;
using MomoPre = WithPrologue<Momo>;
using MomoAdamSumsPre = WithPrologue<MomoAdamSums>;
using MomoAdamPre = WithPrologue<MomoAdam>;
using ScheduleFreeSgdPre = WithPrologue<ScheduleFreeSgd>;
using ScheduleFreeAdamWPre = WithPrologue<ScheduleFreeAdamW>;
}  // namespace fromax::functors

#define FROMAX_FUNCTORS(REDUCE, UPDATE, FUSED)          \
  REDUCE(fromage_sums, FromageSums)                     \
  UPDATE(axpby, Axpby)                                  \
  FUSED(fromage, Fromage)                               \
  FUSED(lars, Lars)                                     \
  FUSED(lamb, Lamb)                                     \
  FUSED(novograd_step, NovogradStep)                    \
  UPDATE(adamw, AdamW)                                  \
  UPDATE(adamw_ema, AdamWEma)                           \
  REDUCE(lamb_norms, LambNorms)                         \
  REDUCE(hypergradient_sums, HypergradientSums)         \
  REDUCE(surprise_sums, SurpriseSums)                   \
  REDUCE(lars_norms, LarsNorms)                         \
  UPDATE(momentum, Momentum)                            \
  UPDATE(novograd, Novograd)                            \
  REDUCE(distance_norms, DistanceNorms)                 \
  UPDATE(scaled_sgd, ScaledSgd)                         \
  REDUCE(prodigy_sums, ProdigySums)                     \
  UPDATE(prodigy, Prodigy)                              \
  REDUCE(dadapt_sums, DAdaptSums)                       \
  UPDATE(dadapt, DAdapt)                                \
  UPDATE(cocob, Cocob)                                  \
  REDUCE(mechanic_sums, MechanicSums)                   \
  UPDATE(mechanic, Mechanic)                            \
  REDUCE(momo_sums, MomoSums)                           \
  UPDATE(momo, Momo)                                    \
  REDUCE(momo_adam_sums, MomoAdamSums)                  \
  UPDATE(momo_adam, MomoAdam)                           \
  UPDATE(schedule_free, ScheduleFree)                   \
  UPDATE(schedule_free_sgd, ScheduleFreeSgd)            \
  UPDATE(schedule_free_adamw, ScheduleFreeAdamW)        \
  REDUCE(sum_sq, SumSq)                                 \
  REDUCE(grad_sq, GradSq)                               \
  REDUCE(grad_sq_pre, GradSqPre)                        \
  UPDATE(adamw_pre, AdamWPre)                           \
  REDUCE(lamb_norms_pre, LambNormsPre)                  \
  REDUCE(lars_norms_pre, LarsNormsPre)                  \
  UPDATE(momentum_pre, MomentumPre)                     \
  UPDATE(novograd_pre, NovogradPre)                     \
  REDUCE(distance_norms_pre, DistanceNormsPre)          \
  UPDATE(scaled_sgd_pre, ScaledSgdPre)                  \
  REDUCE(prodigy_sums_pre, ProdigySumsPre)              \
  UPDATE(prodigy_pre, ProdigyPre)                       \
  UPDATE(cocob_pre, CocobPre)                           \
  REDUCE(momo_sums_pre, MomoSumsPre)                    \
  UPDATE(momo_pre, MomoPre)                             \
  REDUCE(momo_adam_sums_pre, MomoAdamSumsPre)           \
  UPDATE(momo_adam_pre, MomoAdamPre)                    \
  UPDATE(schedule_free_sgd_pre, ScheduleFreeSgdPre)     \
  UPDATE(schedule_free_adamw_pre, ScheduleFreeAdamWPre)
