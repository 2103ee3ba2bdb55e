// Every functor of the elementwise engine, as X-macro entries: REDUCE(name, Functor) for a reduce
// phase (target fromax_<name>: per-tensor sums), UPDATE(name, Functor) for an update phase (target
// fromax_<name>: tensors out). cpp/family_handlers.cc defines a handler per entry, cpp/module.cc
// exports them, and python/fromax/_functors.py declares the same names with the same math.
#pragma once

#include "adam.h"
#include "cocob.h"
#include "dadapt.h"
#include "distance.h"
#include "layerwise.h"
#include "mechanic.h"
#include "momo.h"
#include "schedule_free.h"

#define FROMAX_FUNCTORS(REDUCE, UPDATE)              \
  UPDATE(adamw, AdamW)                               \
  UPDATE(adamw_ema, AdamWEma)                        \
  REDUCE(lamb_norms, LambNorms)                      \
  REDUCE(hypergradient_sums, HypergradientSums)      \
  REDUCE(surprise_sums, SurpriseSums)                \
  REDUCE(lars_norms, LarsNorms)                      \
  UPDATE(momentum, Momentum)                         \
  UPDATE(novograd, Novograd)                         \
  REDUCE(distance_norms, DistanceNorms)              \
  UPDATE(scaled_sgd, ScaledSgd)                      \
  REDUCE(prodigy_sums, ProdigySums)                  \
  UPDATE(prodigy, Prodigy)                           \
  REDUCE(dadapt_sums, DAdaptSums)                    \
  UPDATE(dadapt, DAdapt)                             \
  UPDATE(cocob, Cocob)                               \
  REDUCE(mechanic_sums, MechanicSums)                \
  UPDATE(mechanic, Mechanic)                         \
  REDUCE(momo_sums, MomoSums)                        \
  UPDATE(momo, Momo)                                 \
  REDUCE(momo_adam_sums, MomoAdamSums)               \
  UPDATE(momo_adam, MomoAdam)                        \
  UPDATE(schedule_free, ScheduleFree)                \
  UPDATE(schedule_free_sgd, ScheduleFreeSgd)         \
  UPDATE(schedule_free_adamw, ScheduleFreeAdamW)
