"""Librarian, the past: clean, unified customer data.

`standardise` turns raw contact fields into comparable ones (names, e-mail, E.164 phone, postal
codes), `identity` links source records and anonymous ids into golden customers (deterministic
rules plus Splink), `hygiene` scores completeness, validity, consistency, uniqueness and recency,
and `customer360` searches customers and assembles one customer's timeline and profile.
"""
