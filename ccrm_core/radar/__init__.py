"""Radar, the present: who each customer is and what they are worth.

`value` fits RFM, BG/NBD and Gamma-Gamma for lifetime value, `segments` builds value- and
needs-based segments and saved rules, `kpis` builds the command center's marts, answers its page
queries and flags anomalies against forecasts, and `propensity` scores buying and churn.
"""
