// Every functor of the elementwise engine: the contract's entries (python/fromax/functors.h: a
// reduce phase, target fromax_<name>: per-tensor sums; an update phase: tensors out; a per-tensor
// fused step: reduce, finish and update of each tensor in one call) with their C++ types, and
// <name>_pre, <name> with the gradient prologue (prologue.h), for the optimizers that fold an
// optax.chain's gradient pre-processing into their own pass. cpp/family_handlers.cc defines a
// handler per entry, cpp/module.cc exports them, and python/fromax/_functors.py holds the same
// math, by the same names.
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

#include <type_traits>

namespace fromax::functors {
using GradNormPre = WithPrologue<GradNorm>;
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

// Every functor, from the contract's table: REDUCE(name, Functor, ...), UPDATE(name, Functor, ...),
// FUSED(name, Functor, ...) (the macros take the entry's name and functor type first and may ignore
// the rest); the prologue twins come last.
#define FROMAX_FUNCTORS(REDUCE, UPDATE, FUSED) \
  FROMAX_CONTRACT(REDUCE, UPDATE, FUSED)       \
  FROMAX_PROLOGUE_TWINS(REDUCE, UPDATE)

// Each functor implements its own contract entry, a fused functor's parts are the entries it names,
// and a twin derives from its base's entry (WithPrologue<Base> derives from Base).
namespace fromax::functors {
#define FROMAX_CHECK_ENTRY(name, F, ...) \
  static_assert(std::is_base_of_v<contract::name, F>, #F " must derive from contract::" #name);
#define FROMAX_CHECK_FUSED(name, F, reduce, update, columns)                                                 \
  FROMAX_CHECK_ENTRY(name, F)                                                                                   \
  static_assert(std::is_base_of_v<contract::reduce, F::Reduce> && std::is_base_of_v<contract::update, F::Update>, \
                #F "'s Reduce and Update must implement contract::" #reduce " and contract::" #update);                \
  static_assert(contract::StartsWith(#columns, contract::reduce::kColNames) &&                                     \
                    contract::reduce::kIn <= contract::update::kIn,                                                \
                #name "'s columns must start with " #reduce "'s, which may read no more streams than " #update "'s");
#define FROMAX_CHECK_TWIN(name, F, base) FROMAX_CHECK_ENTRY(base, F)
FROMAX_CONTRACT(FROMAX_CHECK_ENTRY, FROMAX_CHECK_ENTRY, FROMAX_CHECK_FUSED)
FROMAX_PROLOGUE_TWINS(FROMAX_CHECK_TWIN, FROMAX_CHECK_TWIN)
#undef FROMAX_CHECK_ENTRY
#undef FROMAX_CHECK_FUSED
#undef FROMAX_CHECK_TWIN
}  // namespace fromax::functors
