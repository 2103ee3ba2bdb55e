"""The hypergradient optimizers of shared/specs/hypergradient.md, written out directly in float64
NumPy (no code shared with fromax): the oracle for tests/test_family.py."""

from __future__ import annotations

import numpy as np


class HypergradientOracle:
    def __init__(self, params, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.01, beta_hyper=1e-7, lr_min=1e-6, lr_max=1.0,
                 log_scale=False):
        self.p = [np.asarray(x, np.float64) for x in params]
        self.m = [np.zeros_like(x) for x in self.p]
        self.v = [np.zeros_like(x) for x in self.p]
        self.lr, self.b1, self.b2, self.eps, self.wd = lr, b1, b2, eps, weight_decay
        self.beta_hyper, self.lr_min, self.lr_max, self.log_scale = beta_hyper, lr_min, lr_max, log_scale
        self.t = 0

    def direction(self, i):  # d_t from the state after step t
        m_hat = self.m[i] / (1 - self.b1**self.t)
        v_hat = self.v[i] / (1 - self.b2**self.t)
        return m_hat / (np.sqrt(v_hat) + self.eps)

    def adamw(self, grads):
        self.t += 1
        for i, g in enumerate(grads):
            self.m[i] = self.b1 * self.m[i] + (1 - self.b1) * g
            self.v[i] = self.b2 * self.v[i] + (1 - self.b2) * g * g
            self.p[i] = self.p[i] * (1 - self.lr * self.wd)
            self.p[i] = self.p[i] - self.lr / (1 - self.b1**self.t) * self.m[i] / (np.sqrt(self.v[i] / (1 - self.b2**self.t)) + self.eps)

    def step(self, grads):
        grads = [np.asarray(g, np.float64) for g in grads]
        if self.t >= 1:
            h = sum(float(np.sum(g * self.direction(i))) for i, g in enumerate(grads))
            if self.log_scale:
                self.lr = float(np.exp(np.clip(np.log(self.lr) + self.beta_hyper * h, np.log(self.lr_min), np.log(self.lr_max))))
            else:
                self.lr = float(np.clip(self.lr + self.beta_hyper * h, self.lr_min, self.lr_max))
        self.adamw(grads)


class AutoHypergradientOracle(HypergradientOracle):
    def __init__(self, params, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.01, hyper_lr=0.01, hyper_lr_beta=1.0, lr_min=1e-6,
                 lr_max=1.0, adapt_momentum=False, track_surprise=False, surprise_gamma=0.9, surprise_alpha=0.1, trauma_threshold=0.5,
                 beta_min=0.5, beta_max=0.9995, warmup_steps=10):
        super().__init__(params, lr, b1, b2, eps, weight_decay, 0.0, lr_min, lr_max)
        self.hyper_lr, self.hyper_lr_beta = hyper_lr, hyper_lr_beta
        self.adapt_momentum, self.track_surprise = adapt_momentum, track_surprise
        self.gamma, self.alpha, self.trauma = surprise_gamma, surprise_alpha, trauma_threshold
        self.beta_min, self.beta_max, self.warmup = beta_min, beta_max, warmup_steps
        self.G, self.Gb, self.prev_sq = 1.0, 1.0, 0.0
        self.ema, self.gv, self.s_avg, self.gain = None, None, 0.0, 0.0

    def step(self, grads):
        grads = [np.asarray(g, np.float64) for g in grads]
        k = self.t
        n2 = sum(float(np.sum(g * g)) for g in grads)
        if k >= self.warmup and self.prev_sq > 1e-12:
            gd = sum(float(np.sum(g * self.direction(i))) for i, g in enumerate(grads))
            h = float(np.clip(-gd / self.prev_sq, -1, 1))
            self.G = 0.99 * self.G + 0.01 * h * h
            target = self.lr - self.hyper_lr * h / (np.sqrt(self.G) + 1e-12)
            target = min(max(target, 0.9 * self.lr), 1.1 * self.lr)
            self.lr = float(np.clip(target, self.lr_min, self.lr_max))
            if self.adapt_momentum:
                gm = sum(float(np.sum(g * self.m[i])) for i, g in enumerate(grads))
                hb = float(np.clip(gm / self.prev_sq, -1, 1))
                self.Gb = 0.99 * self.Gb + 0.01 * hb * hb
                self.b1 = float(np.clip(self.b1 - self.hyper_lr_beta * hb / (np.sqrt(self.Gb) + 1e-12), self.beta_min, self.beta_max))
        if self.track_surprise and k >= self.warmup:
            self.gv = n2 if self.gv is None else self.gamma * self.gv + (1 - self.gamma) * n2
            pe = n2 if self.ema is None else sum(float(np.sum((g - e) ** 2)) for g, e in zip(grads, self.ema))
            s = np.tanh(pe / (self.gv + 1e-12))
            self.s_avg = self.alpha * s + (1 - self.alpha) * self.s_avg
            self.gain = self.s_avg * np.exp(-self.s_avg / self.trauma)
            self.ema = [g.copy() for g in grads] if self.ema is None else [self.gamma * e + (1 - self.gamma) * g for e, g in zip(self.ema, grads)]
        self.prev_sq = n2
        self.adamw(grads)
