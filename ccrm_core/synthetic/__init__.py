"""The synthetic company behind `ccrm sample`: source systems with duplicate and dirty records,
anonymous visitors linked by login, needs-based personas, buy-till-you-die purchases, media spend
with adstock and saturation, and the ground truth of all of it, so tests can check that each role
recovers what was planted. Same seed, same data.
"""
