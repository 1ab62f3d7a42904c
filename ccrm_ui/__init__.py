"""Streamlit-side helpers: the process-wide connection, cached core calls, navigation."""
