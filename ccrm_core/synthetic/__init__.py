"""The synthetic company behind `ccrm sample`: source systems with duplicate and dirty records,
anonymous visitors linked by login, needs-based personas, buy-till-you-die purchases, media spend
with adstock and saturation, and the ground truth of all of it, so tests can check that each role
recovers what was planted. Same seed, same data.

`sample` is the public module (generate, write, and the planted parameters, re-exported);
`parameters` holds the planted parameters; `company` the state of one run, combining one step
module each for `people`, `media`, `records`, `purchases`, `events`, `source_records` (variations
and defects), `frames` (the raw tables) and `ground_truth`; `writer` writes into DuckDB or CSV;
`columns` (arrow columns) and `draws` (random draws) are helpers; `vocabulary` holds the names,
places and words the company is made of.
"""
