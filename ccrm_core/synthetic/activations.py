"""Planted activations: segment x ad-platform exports with a stable holdout and a known effect,
so the activation readout (conductor.audience.readout) can be checked against the truth.

Generator step (`ActivationSteps.activations`, a mixin of _Company): for each entry of
parameters.SAMPLE_ACTIVATIONS, the members are the persons of its personas who were customers at
the export (first purchase and primary record before it); whether a member is held out is
`audience.is_held_out(name, key, holdout)`, the app's own hash, keyed by the person's primary
record ('<source_system>:<source_id>', since customer ids only exist after identity resolution).
Each sent member makes one extra order with probability `uplift` in the window after the export
(uniform time, Gamma-Gamma value at the person's spend rate). Every draw comes from a stream of
its own ([seed, ACTIVATION_STREAM]) and the extra orders join the orders table after the other
steps drew theirs, so every other planted result keeps its random draws.

Truth (ground_truth_activation, ground_truth_activation_members): measured on the final orders,
per activation, the sent members' conversion in the window with and without the planted orders;
`true_lift` = their difference (the share of sent members whose conversion the activation
caused), `true_incremental_revenue_per_person` = the planted orders' revenue / sent members.

Demo step (`sample_activations_stage`, the build stage `sample_activations`): the activation
tables are app state keyed by customer id, which only the identity stage makes, so `ccrm sample`
cannot write them. Once customers exist, the stage records each planted activation as a first
export (run 1, at the planted export time, by 'ccrm sample'): its members are the customers
holding a member person's primary record (held out as the person was). It does nothing on data
without the sample's truth tables and never touches an activation a user created.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from ccrm_core.foundation import store
from ccrm_core.synthetic.draws import _choice_by_group
from ccrm_core.synthetic.parameters import (
    ACTIVATION_DAYS_BEFORE_END,
    ACTIVATION_STREAM,
    ACTIVATION_WINDOW_DAYS,
    BTYD_PARAMS,
    CATEGORY_PREFERENCE,
    ORDER_CHANNEL_PREFERENCE,
    PERSONAS,
    SAMPLE_ACTIVATION_ACTOR,
    SYSTEMS,
)

ACTIVATION_ORDER_KIND = 4  # o_kind of the planted activation orders


class ActivationSteps:
    """Planted activations (mixin of _Company)."""

    def activations(self) -> None:
        from ccrm_core.conductor.audience.activations import is_held_out

        rng = np.random.Generator(np.random.PCG64([self.seed, ACTIVATION_STREAM]))
        self.act_before_end = min(ACTIVATION_DAYS_BEFORE_END, max(self.D // 6, 2))
        self.act_window = min(ACTIVATION_WINDOW_DAYS, self.act_before_end - 1)
        self.act_t = float(self.D - self.act_before_end) + 10.0 / 24.0
        prim = self.primary_rec
        known = (self.rec_created[prim] < self.act_t) & (self.t0 < self.act_t)
        systems = np.asarray(SYSTEMS, dtype=object)[self.rec_system[prim]]
        ids = np.asarray(self.record_ids(prim).to_pylist(), dtype=object)
        self.act_members: list[tuple[np.ndarray, np.ndarray]] = []  # (persons, held_out)
        self.act_planted_counts: list[int] = []
        people, times, values = [], [], []
        for spec in self.activation_specs:
            wanted = [PERSONAS.index(p) for p in spec["personas"]]
            members = np.flatnonzero(known & np.isin(self.persona, wanted))
            keys = [f"{s}:{i}" for s, i in zip(systems[members], ids[members], strict=True)]
            held = is_held_out(spec["name"], keys, float(spec["holdout"]))
            self.act_members.append((members, held))
            sent = members[~held]
            buyers = sent[rng.random(sent.size) < float(spec["uplift"])]
            people.append(buyers)
            self.act_planted_counts.append(int(buyers.size))
            times.append(self.act_t + rng.uniform(0.3, self.act_window - 0.3, buyers.size))
            z = rng.gamma(BTYD_PARAMS["p"], 1.0, buyers.size) / self.nu[buyers]
            values.append(np.maximum(np.round(z, 2), 1.0))
        self.ao_person = np.concatenate([np.empty(0, np.int64), *people]).astype(np.int64)
        self.ao_t = np.concatenate([np.empty(0), *times])
        self.ao_revenue = np.concatenate([np.empty(0), *values])
        persona = self.persona[self.ao_person]
        self.ao_channel = _choice_by_group(rng, persona, ORDER_CHANNEL_PREFERENCE)
        self.ao_category = _choice_by_group(rng, persona, CATEGORY_PREFERENCE)

    def _activation_truth(self) -> dict[str, pd.DataFrame]:
        """ground_truth_activation and ground_truth_activation_members (see module docstring)."""
        start_s = int(self.seconds(np.array([self.act_t]))[0])
        end_s = start_s + self.act_window * 86400
        ts = self.seconds(self.o_t)
        in_win = (ts > start_s) & (ts <= end_s)
        planted = self.o_kind == ACTIVATION_ORDER_KIND
        conv_with = np.zeros(self.n, dtype=bool)
        conv_with[self.o_person[in_win]] = True
        conv_without = np.zeros(self.n, dtype=bool)
        conv_without[self.o_person[in_win & ~planted]] = True
        rows, member_frames = [], []
        prim = self.primary_rec
        for spec, (members, held) in zip(self.activation_specs, self.act_members, strict=True):
            rows.append((spec, members, members[~held], members[held]))
            member_frames.append(
                pd.DataFrame(
                    {
                        "activation": spec["name"],
                        "person_id": members + 1,
                        "source_system": np.asarray(SYSTEMS, dtype=object)[
                            self.rec_system[prim[members]]
                        ],
                        "source_id": self.record_ids(prim[members]).to_pylist(),
                        "held_out": held,
                    }
                )
            )
        # planted orders per activation: ao_* were drawn activation by activation, in order
        counts = self.act_planted_counts
        bounds = np.concatenate([[0], np.cumsum(counts)])
        out = []
        exported = pd.to_datetime([start_s], unit="s")[0]
        for k, (spec, members, sent, control) in enumerate(rows):
            revenue = float(self.ao_revenue[bounds[k] : bounds[k + 1]].sum())
            t_with = float(conv_with[sent].mean()) if sent.size else float("nan")
            t_without = float(conv_without[sent].mean()) if sent.size else float("nan")
            c_rate = float(conv_with[control].mean()) if control.size else float("nan")
            out.append(
                {
                    "activation": spec["name"],
                    "scheme": spec["scheme"],
                    "segment": spec["segment"],
                    "destination": spec["destination"],
                    "holdout_share": float(spec["holdout"]),
                    "exported_at": exported,
                    "window_days": int(self.act_window),
                    "members": int(members.size),
                    "treated": int(sent.size),
                    "control": int(control.size),
                    "planted_uplift": float(spec["uplift"]),
                    "treated_conversion": t_with,
                    "treated_conversion_without": t_without,
                    "control_conversion": c_rate,
                    "true_lift": t_with - t_without,
                    "activation_orders": counts[k],
                    "true_incremental_revenue": revenue,
                    "true_incremental_revenue_per_person": revenue / sent.size
                    if sent.size
                    else float("nan"),
                }
            )
        if not out:  # a company generated without activations
            from ccrm_core.synthetic.ground_truth import GROUND_TRUTH_TABLES

            return {
                t: pd.DataFrame({c: pd.Series(dtype=object) for c, _ in GROUND_TRUTH_TABLES[t]})
                for t in ("ground_truth_activation", "ground_truth_activation_members")
            }
        return {
            "ground_truth_activation": pd.DataFrame(out),
            "ground_truth_activation_members": pd.concat(member_frames, ignore_index=True),
        }


# -- demo: the planted activations as exports, once customers exist ------------------------------

_SAMPLE_MEMBERS_SQL = """
SELECT m.customer_id, arg_min(g.held_out, g.person_id) AS held_out
FROM ground_truth_activation_members g
JOIN identity_map m ON m.source_system = g.source_system AND m.source_id = g.source_id
WHERE g.activation = ? AND m.customer_id IS NOT NULL
GROUP BY m.customer_id
ORDER BY m.customer_id
"""


def sample_activations_stage(con, ctx) -> int:
    """Build stage `sample_activations`: record the sample's planted activations as first
    exports (see the module docstring); returns the member rows written (0 without the sample's
    truth tables)."""
    del ctx
    needed = ("ground_truth_activation", "ground_truth_activation_members", "identity_map")
    if not all(store.table_exists(con, t) for t in needed) or not store.table_exists(
        con, "activations"
    ):
        return 0
    truth = con.execute(
        "SELECT activation, scheme, segment, destination, holdout_share, exported_at "
        "FROM ground_truth_activation ORDER BY exported_at, activation"
    ).fetchall()
    written = 0
    for name, scheme, segment, destination, share, exported_at in truth:
        stored = con.execute(
            "SELECT activation_id, created_by FROM activations WHERE name = ?", [name]
        ).fetchall()
        if stored and stored[0][1] != SAMPLE_ACTIVATION_ACTOR:
            continue  # a user's own activation of that name: never touched
        if stored:
            activation_id = int(stored[0][0])
            for table in ("activation_members", "activation_runs"):
                con.execute(
                    f"DELETE FROM {table} WHERE activation_id = ? AND run = 1",  # noqa: S608
                    [activation_id],
                )
            con.execute("DELETE FROM activations WHERE activation_id = ?", [activation_id])
        else:
            activation_id = int(
                con.execute(
                    "SELECT coalesce(max(activation_id), 0) + 1 FROM activations"
                ).fetchall()[0][0]
            )
        members = con.execute(_SAMPLE_MEMBERS_SQL, [name]).df()
        held = members["held_out"].to_numpy(dtype=bool)
        con.execute(
            "INSERT INTO activations VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [activation_id, name, scheme, segment, destination, share, exported_at,
             SAMPLE_ACTIVATION_ACTOR],
        )  # fmt: skip
        sent = int((~held).sum())
        con.execute(
            "INSERT INTO activation_runs VALUES (?, 1, ?, ?, ?, ?, ?, 0, ?, 0, NULL)",
            [activation_id, exported_at, SAMPLE_ACTIVATION_ACTOR, len(members), sent,
             int(held.sum()), sent],
        )  # fmt: skip
        keys = pa.list_(pa.string())
        table = pa.table(
            {
                "activation_id": pa.array(np.full(len(members), activation_id, dtype=np.int64)),
                "run": pa.array(np.ones(len(members), dtype=np.int64)),
                "customer_id": pa.array(members["customer_id"].tolist(), pa.string()),
                "held_out": pa.array(held),
                "email_keys": pa.nulls(len(members), keys),
                "phone_keys": pa.nulls(len(members), keys),
            }
        )
        view = "_ccrm_sample_activation_members"
        con.register(view, table)
        try:
            con.execute(f"INSERT INTO activation_members SELECT * FROM {view}")  # noqa: S608
        finally:
            con.unregister(view)
        written += len(members)
    return written
