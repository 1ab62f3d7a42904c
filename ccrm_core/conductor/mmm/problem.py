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
from scipy.linalg.lapack import dpotrf, dtrtrs
from scipy.optimize import minimize, nnls
from scipy.signal import lfilter

MAX_DECAY = 0.95
SLOPE_BOUNDS = (0.5, 3.0)
HALF_SATURATION_BOUNDS = (np.log(0.2), np.log(5.0))  # log m, K = m x steady adstock at mean spend
DECAY_GRID = (0.0, 0.15, 0.3, 0.45, 0.6, 0.75, 0.9)
HALF_SATURATION_GRID = (0.3, 0.6, 1.0, 1.7, 3.0)  # x steady-state adstock at mean spend
SLOPE_GRID = (0.8, 1.3, 2.0, 3.0)


def _c_linear_filter():
    """scipy's compiled IIR filter without lfilter's per-call argument handling (this fit makes
    about 300,000 calls on 730 days, where that handling costs twice the filtering), or None
    where this scipy lacks it or it does not reproduce lfilter."""
    try:
        from scipy.signal import _sigtools

        probe = np.array([1.0, 0.0, 2.0, 0.5])
        b, a = np.array([0.0, 1.0]), np.array([1.0, -0.6, 0.09])
        if np.array_equal(_sigtools._linear_filter(b, a, probe, -1), lfilter(b, a, probe)):
            return _sigtools._linear_filter
    except Exception:  # noqa: BLE001 - any failure: use the public lfilter
        pass
    return None


_LINEAR_FILTER = _c_linear_filter()


def _iir(b: np.ndarray, a: np.ndarray, x: np.ndarray) -> np.ndarray:
    """lfilter(b, a, x) for float64 b, a (a[0] = 1) and a 1-d float64 x."""
    if _LINEAR_FILTER is not None:
        return _LINEAR_FILTER(b, a, x, -1)
    return lfilter(b, a, x)


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
        self.xt = np.ascontiguousarray(self.x.T)  # channels x days
        self.xt_ext = np.zeros((self.xt.shape[0], self.xt.shape[1] + 1))  # and one more day of 0
        self.xt_ext[:, :-1] = self.xt
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

    def half_saturation(self, params: np.ndarray) -> np.ndarray:
        """K per channel in scaled adstock units: m x mean spend / (1 - decay)."""
        p = params.reshape(-1, 3)
        return np.exp(p[:, 1]) * self.mean_x / (1 - p[:, 0])

    def columns(self, params: np.ndarray, grad: bool = False):
        """Hill columns H (days x channels) and, with grad, their derivatives per parameter
        (3 x days x channels: d H / d decay, d log m, d slope).

        Parameters per channel: decay theta, log m, slope s, with K = m * steady-state adstock
        at mean spend; bounding m keeps the half-saturation inside the range the data spans (a
        curve saturated on every day would be indistinguishable from the intercept)."""
        h, factors = self._hill(params, grad)
        if factors is None:
            return h.T, None
        hh, hh_log, hh_da = factors
        p = params.reshape(-1, 3)
        theta, slope = p[:, 0:1], p[:, 2:3]
        d = np.stack([slope * (hh_da - hh / (1 - theta)), -slope * hh, hh_log])
        return h.T, d.transpose(0, 2, 1)

    @staticmethod
    def _chain(params: np.ndarray, sums: np.ndarray) -> np.ndarray:
        """Per channel (channels x 3: decay, log m, slope) the derivative of sum_t w_t h_c,t
        from `sums` = factors @ w (3 x channels, see `_hill`)."""
        p = params.reshape(-1, 3)
        theta, s = p[:, 0], p[:, 2]
        out = np.empty((len(theta), 3))
        out[:, 0] = s * (sums[2] - sums[0] / (1 - theta))
        out[:, 1] = -s * sums[0]
        out[:, 2] = sums[1]
        return out

    def _hill(self, params: np.ndarray, grad: bool):
        """H channel-major (channels x days) and, with grad, the factors (3 x channels x days)
        hh, hh log ratio, hh (da/dtheta) / a with hh = u dh/du = h / (1 + u): with ratio =
        a (1 - theta) / (m mean), u = ratio^s, h = u / (1 + u),

            d h / d log m = -s hh
            d h / d slope = hh log ratio
            d h / d theta = s hh ((da/dtheta) / a - 1 / (1 - theta))

        so a weighted sum of the derivatives over days is three matrix-vector products
        (`_chain`), never the derivatives themselves.

        Without grad: the adstock filter and the power per channel (a scalar slope takes
        numpy's exact paths, as in the grid search). With grad, one filter call per channel
        gives both the adstock and its derivative in the decay: da/dtheta is the adstock of the
        adstock a day earlier, i.e. spend through the double pole 1 / (1 - theta z)^2 delayed a
        day, and then a_t = da_t+1 - theta da_t (the recursion da_t+1 = a_t + theta da_t)."""
        p = params.reshape(-1, 3)
        theta, logm, s = p[:, 0], p[:, 1], p[:, 2]
        steady = np.exp(logm) * self.mean_x / (1 - theta)  # K: m x steady adstock at mean spend
        if not grad:
            a = np.empty_like(self.xt)
            one = np.ones(1)
            for c, decay in enumerate(theta):
                a[c] = _iir(one, np.array([1.0, -decay]), self.xt[c])
            ratio = np.maximum(a, 0.0) / steady[:, None]
            u = np.empty_like(ratio)
            for c, slope in enumerate(s):
                np.power(ratio[c], slope, out=u[c])
            return u / (1 + u), None
        ext = np.empty((self.n_channels, self.n_days + 1))
        delay = np.array([0.0, 1.0])
        for c, decay in enumerate(theta):
            ext[c] = _iir(delay, np.array([1.0, -2.0 * decay, decay * decay]), self.xt_ext[c])
        da = ext[:, :-1]
        a = np.maximum(ext[:, 1:] - theta[:, None] * da, 0.0)
        factors = np.empty((3,) + a.shape)
        hh, hh_log, hh_da = factors
        if a.min() > 0:
            log_ratio = np.log(a / steady[:, None])
            u = np.exp(s[:, None] * log_ratio)
        else:  # h and hh are 0 where a is: any finite factor gives a 0 derivative
            positive = a > 0
            a = np.where(positive, a, 1.0)
            log_ratio = np.where(positive, np.log(a / steady[:, None]), 0.0)
            u = np.where(positive, np.exp(s[:, None] * log_ratio), 0.0)
        onep = 1 + u
        h = u / onep
        np.divide(h, onep, out=hh)
        np.multiply(hh, log_ratio, out=hh_log)
        np.multiply(hh, da, out=hh_da)
        hh_da /= a
        return h, factors

    def solve(self, h: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """Non-negative media betas for fixed columns: (beta, data residual, loss); the loss
        adds the lift-test terms and the ridge penalty to the residual sum of squares."""
        beta, resid, loss, _ = self._solve(h)
        return beta, resid, loss

    def _solve(self, h: np.ndarray):
        """(beta, data residual, loss, weighted lift residual per test).

        With a ridge the stacked system [projected H; lift rows; sqrt(ridge) I] has a Gram
        matrix whose eigenvalues are at least the ridge, so it is solved through its Cholesky
        factor: ||A b - r||^2 = ||R b - z||^2 + const with R'R = A'A, R'z = A'r, the same
        non-negative least squares on channels x channels instead of days x channels."""
        mh = self._project(self.sw[:, None] * h)
        lift_rows = lift_rhs = None
        if len(self.lift_channel):
            lift_rows = self._lift_rows(h)
            lift_rhs = self.lift_weight * self.lift_target
        if self.ridge > 0:
            gram = mh.T @ mh
            gram.flat[:: self.n_channels + 1] += self.ridge
            rhs = mh.T @ self.my
            if lift_rows is not None:
                gram += lift_rows.T @ lift_rows
                rhs += lift_rows.T @ lift_rhs
            upper, info = dpotrf(gram, lower=0, clean=1)  # gram = R'R
            z, info_z = dtrtrs(upper, rhs, lower=0, trans=1)  # R'z = A'r
            if info or info_z:
                raise np.linalg.LinAlgError("media Gram matrix is not positive definite")
            beta, _ = nnls(upper, z, maxiter=50 * self.n_channels)
        elif lift_rows is not None:
            beta, _ = nnls(np.vstack([mh, lift_rows]), np.concatenate([self.my, lift_rhs]))
        else:
            beta, _ = nnls(mh, self.my, maxiter=50 * self.n_channels)
        resid = self.my - mh @ beta
        loss = float(resid @ resid + self.ridge * beta @ beta)
        lift_resid = None
        if lift_rows is not None:
            lift_resid = lift_rows @ beta - lift_rhs
            loss += float(lift_resid @ lift_resid)
        return beta, resid, loss, lift_resid

    def objective(self, params: np.ndarray) -> tuple[float, np.ndarray]:
        h, factors = self._hill(params, grad=True)
        beta, resid, rss, lift_resid = self._solve(h.T)
        # envelope theorem: d rss / d param = -2 beta_c r' dh_c/dparam (r is orthogonal to
        # the baseline, so the projection drops out)
        g = -2.0 * self._chain(params, factors @ (resid * self.sw)) * beta[:, None]
        if lift_resid is not None:
            # lift term w_k (beta_c sum_window h_c - L_k): d / d param = w_k beta_c sum_window dh_c
            p = params.reshape(-1, 3)
            for k, c in enumerate(self.lift_channel):
                window = factors[:, c : c + 1, :] @ self.lift_days[k]  # 3 x 1
                dsum = self._chain(p[c], window)[0]
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
                    a = np.maximum(_iir(np.ones(1), np.array([1.0, -theta]), self.xt[c]), 0.0)
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
