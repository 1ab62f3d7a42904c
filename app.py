"""Connected CRM Command Center: the router. Run with `make run` or `ccrm app`."""

import streamlit as st

from ccrm_core.foundation import formatting
from ccrm_core.foundation.rendering import markdown_text
from ccrm_ui import auth, db, navigation, timing

st.set_page_config(
    page_title="Connected CRM Command Center", page_icon=":material/hub:", layout="wide"
)

user = auth.gate()  # sign-in / not-authorised screens stop here; local mode runs as admin
page = st.navigation(navigation.build_pages(user))
st.set_page_config(page_title=navigation.browser_title(page.title))  # per-page browser tab
with timing.page_run(page.title):  # server time per run, when CCRM_TIMING=1
    db.connection()  # a busy or unreadable database stops here with a clear message
    if problem := formatting.currency_problem():  # an unknown CCRM_CURRENCY: said, not fatal
        st.warning(markdown_text(problem) + ".", icon=":material/currency_exchange:")
    page.run()
