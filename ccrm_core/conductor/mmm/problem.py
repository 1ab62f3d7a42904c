"""The profiled least-squares problem: residual sum of squares as a function of the nonlinear
media parameters (adstock decay, half-saturation, Hill slope per channel), with the baseline
projected out (Frisch-Waugh) and the media betas solved by non-negative least squares; a grid
coordinate search and an L-BFGS-B refinement on the exact gradient (variable projection).

Lift tests (`set_lift_tests`) join the loss as Gaussian likelihood terms: each test adds the
squared residual ((sum of the channel's modelled contribution over the test's days) - measured
lift) / standard error, with the data residuals divided by the noise sd. For fixed nonlinear
parameters that residual is linear in the channel's beta, so it is one more row of the
non-negative least-squares system and the baseline projection stays exact.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize, nnls
from scipy.signal import lfilter

MAX_DECAY = 0.95
SLOPE_BOUNDS = (0.5, 3.0)
HALF_SATURATION_BOUNDS = (np.log(0.2), np.log(5.0))  # log m, K = m x steady adstock at mean spend
DECAY_GRID = (0.0, 0.15, 0.3, 0.45, 0.6, 0.75, 0.9)
HALF_SATURATION_GRID = (0.3, 0.6, 1.0, 1.7, 3.0)  # x steady-state adstock at mean spend
SLOPE_GRID = (0.8, 1.3, 2.0, 3.0)


class _Problem:
    """RSS of the model as a function of the nonlinear media parameters (scaled units).

    y is divided by its mean, spend per channel by its mean over days with spend, so one set of
    bounds and grids fits every dataset. Parameter vector: per channel (decay, log m, slope).
    """

    def __init__(self, y: np.ndarray, spend: np.ndarray, base: np.ndarray, ridge: float = 0.0):
        self.y_scale = float(np.mean(np.abs(y))) or 1.0
        pos = np.where(spend > 0, spend, np.nan)
        self.x_scale = np.nan_to_num(np.nanmean(pos, axis=0), nan=1.0)
        self.x_scale[self.x_scale <= 0] = 1.0
        self.x = spend / self.x_scale
        self.base = base
        self.sw = np.ones(len(y))  # sqrt of day weights (a block bootstrap reweights days)
        self.q, _ = np.linalg.qr(base)
        self.n_days, self.n_channels = self.x.shape
        self.ridge = ridge
        self.lift_days = np.zeros((0, self.n_days))  # tests x days: 1 inside the test window
        self.lift_channel = np.zeros(0, dtype=np.int64)
        self.lift_weight = np.zeros(0)  # sigma / standard error (scaled units)
        self.lift_target = np.zeros(0)  # measured lift / y_scale
        self.mean_x = np.array(
            [
                max(self.x[:, c][self.x[:, c] > 0].mean(), 1e-9)
                if (self.x[:, c] > 0).any()
                else 1.0
                for c in range(self.n_channels)
            ]
        )
        self.set_target(y)

    def set_target(self, y: np.ndarray) -> None:
        self.y = y / self.y_scale
        self.my = self._project(self.sw * self.y)

    def set_weights(self, weights: np.ndarray) -> None:
        """Weight days in the loss (how many times a block bootstrap drew each day). Adstock
        still runs over the full, ordered series, so carryover stays intact."""
        self.sw = np.sqrt(np.asarray(weights, dtype=float))
        self.q, _ = np.linalg.qr(self.sw[:, None] * self.base)
        self.my = self._project(self.sw * self.y)

    def set_lift_tests(
        self,
        days: np.ndarray,
        channel: np.ndarray,
        lift: np.ndarray,
        standard_error: np.ndarray,
        sigma: float,
    ) -> None:
        """Lift tests as likelihood terms: `days` (tests x days, 1 inside a test's window),
        the channel index, the measured lift and its standard error (currency over the window),
        and `sigma`, the noise sd of daily revenue in scaled units (the data RSS is in units of
        sigma^2, so a test's row is weighted sigma / standard error)."""
        self.lift_days = np.asarray(days, dtype=float).reshape(-1, self.n_days)
        self.lift_channel = np.asarray(channel, dtype=np.int64)
        self.lift_weight = sigma * self.y_scale / np.asarray(standard_error, dtype=float)
        self.set_lift_values(lift)

    def set_lift_values(self, lift: np.ndarray) -> None:
        """The measured lifts (currency over each window); a bootstrap replicate redraws them."""
        self.lift_target = np.asarray(lift, dtype=float) / self.y_scale

    def _lift_rows(self, h: np.ndarray) -> np.ndarray:
        """Rows (tests x channels) whose product with beta is each test's weighted modelled
        lift: weight x sum over the window of the channel's Hill column."""
        rows = np.zeros((len(self.lift_channel), self.n_channels))
        k = np.arange(len(self.lift_channel))
        sums = np.einsum("kt,tk->k", self.lift_days, h[:, self.lift_channel])
        rows[k, self.lift_channel] = self.lift_weight * sums
        return rows

    def _project(self, v: np.ndarray) -> np.ndarray:
        return v - self.q @ (self.q.T @ v)

    def bounds(self) -> list[tuple[float, float]]:
        out = []
        for _ in range(self.n_channels):
            out += [(0.0, MAX_DECAY), HALF_SATURATION_BOUNDS, SLOPE_BOUNDS]
        return out

    @staticmethod
    def _adstock(x: np.ndarray, decay: np.ndarray) -> np.ndarray:
        """Geometric adstock of each column (days x channels) with its channel's decay."""
        out = np.empty_like(x)
        for c, theta in enumerate(decay):
            out[:, c] = lfilter([1.0], [1.0, -theta], x[:, c])
        return out

    def half_saturation(self, params: np.ndarray) -> np.ndarray:
        """K per channel in scaled adstock units: m x mean spend / (1 - decay)."""
        p = params.reshape(-1, 3)
        return np.exp(p[:, 1]) * self.mean_x / (1 - p[:, 0])

    def columns(self, params: np.ndarray, grad: bool = False):
        """Hill columns H (days x channels) and, with grad, their derivatives per parameter.

        Parameters per channel: decay theta, log m, slope s, with K = m * steady-state adstock
        at mean spend; bounding m keeps the half-saturation inside the range the data spans (a
        curve saturated on every day would be indistinguishable from the intercept)."""
        # one filter call per channel (each has its own decay), the rest on all channels at once
        p = params.reshape(-1, 3)
        theta, logm, s = p[:, 0], p[:, 1], p[:, 2]
        a = np.maximum(self._adstock(self.x, theta), 0.0)
        m_mean = np.exp(logm) * self.mean_x
        ratio = a / (m_mean / (1 - theta))
        # per channel: a scalar exponent takes numpy's exact paths (s = 2: square, 0.5: sqrt)
        u = np.empty_like(ratio)
        for c, slope in enumerate(s):
            u[:, c] = np.power(ratio[:, c], slope)
        h = u / (1 + u)
        if not grad:
            return h, None
        d = np.empty((3,) + self.x.shape)
        dh_du = 1.0 / (1 + u) ** 2
        shifted = np.zeros_like(a)
        shifted[1:] = a[:-1]
        da_dtheta = self._adstock(shifted, theta)
        # ratio = a (1 - theta) / (m mean_x): d ratio / d theta
        dratio = (da_dtheta * (1 - theta) - a) / m_mean
        positive = ratio > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            du_dratio = np.where(positive, s * u / ratio, 0.0)
            log_ratio = np.where(positive, np.log(np.where(positive, ratio, 1)), 0.0)
        d[0] = dh_du * du_dratio * dratio
        d[1] = dh_du * (-s * u)
        d[2] = dh_du * u * log_ratio
        return h, d

    def solve(self, h: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """Non-negative media betas for fixed columns: (beta, data residual, loss); the loss
        adds the lift-test terms and the ridge penalty to the residual sum of squares."""
        mh = self._project(self.sw[:, None] * h)
        blocks, rhs = [mh], [self.my]
        if len(self.lift_channel):
            lift_rows = self._lift_rows(h)
            blocks.append(lift_rows)
            rhs.append(self.lift_weight * self.lift_target)
        if self.ridge > 0:
            blocks.append(np.sqrt(self.ridge) * np.eye(self.n_channels))
            rhs.append(np.zeros(self.n_channels))
        if len(blocks) > 1:
            beta, _ = nnls(np.vstack(blocks), np.concatenate(rhs))
        else:
            beta, _ = nnls(mh, self.my, maxiter=50 * self.n_channels)
        resid = self.my - mh @ beta
        loss = float(resid @ resid + self.ridge * beta @ beta)
        if len(self.lift_channel):
            lift_resid = lift_rows @ beta - rhs[1]
            loss += float(lift_resid @ lift_resid)
        return beta, resid, loss

    def objective(self, params: np.ndarray) -> tuple[float, np.ndarray]:
        h, d = self.columns(params, grad=True)
        beta, resid, rss = self.solve(h)
        # envelope theorem: d rss / d param = -2 beta_c r' dh_c/dparam (r is orthogonal to
        # the baseline, so the projection drops out)
        g = -2.0 * np.einsum("t,ktc->ck", resid * self.sw, d) * beta[:, None]
        if len(self.lift_channel):
            # lift term w_k (beta_c sum_window h_c - L_k): d / d param = w_k beta_c sum_window dh_c
            lift_resid = self._lift_rows(h) @ beta - self.lift_weight * self.lift_target
            for k, c in enumerate(self.lift_channel):
                dsum = d[:, :, c] @ self.lift_days[k]
                g[c] += 2.0 * lift_resid[k] * self.lift_weight[k] * beta[c] * dsum
        return rss, g.ravel()

    def grid_search(self, params: np.ndarray, sweeps: int = 3) -> np.ndarray:
        """Coordinate search: per channel, every grid point with the other channels fixed."""
        params = params.copy().reshape(-1, 3)
        h, _ = self.columns(params.ravel())
        best_rss = self.solve(h)[2]
        for _ in range(sweeps):
            improved = False
            for c in range(self.n_channels):
                for theta in DECAY_GRID:
                    a = np.maximum(lfilter([1.0], [1.0, -theta], self.x[:, c]), 0.0)
                    steady = self.mean_x[c] / (1 - theta)
                    for m in HALF_SATURATION_GRID:
                        ratio = a / (m * steady)
                        for s in SLOPE_GRID:
                            u = np.power(ratio, s)
                            h[:, c] = u / (1 + u)
                            rss = self.solve(h)[2]
                            if rss < best_rss - 1e-12:
                                best_rss = rss
                                params[c] = (theta, np.log(m), s)
                                improved = True
                h[:, c] = self.columns(params.ravel())[0][:, c]
            if not improved:
                break
        return params.ravel()

    def refine(self, params: np.ndarray, maxiter: int = 200) -> np.ndarray:
        lo, hi = np.array(self.bounds()).T
        start = np.clip(params, lo, hi)
        res = minimize(
            self.objective,
            start,
            jac=True,
            method="L-BFGS-B",
            bounds=self.bounds(),
            options={"maxiter": maxiter},
        )
        best = res.x if res.fun <= self.objective(start)[0] else start
        return best
