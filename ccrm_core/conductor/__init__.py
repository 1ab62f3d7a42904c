"""Conductor, the future: where the next dollar and the next message go.

`journeys` builds the paths of touches before each order, `attribution` credits channels
bottom-up (heuristics, Markov, Shapley) and reconciles them with the top-down media mix model
(`mmm`), `budget` answers what-ifs and optimises spend over the response curves,
`decisioning` picks the next best action per customer under the contact policy
(`contact_policy.toml`), and `audience` exports consented, hashed audiences.
"""
