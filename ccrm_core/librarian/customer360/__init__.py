"""Customer 360: typo-tolerant search, the profile of one customer, and their timeline.

`keys` holds the normalisation rules shared by index and queries (Python and SQL twins), the
prefix code and `parse_query`; `stages` the build stages `search_index` and `customer_timeline`
(the tables they write are described there); `lookup` the search itself (one SQL statement,
scoring described there) and result masking; `customer_profile` the profile of one customer;
`timeline_page` their filtered, paged timeline; `charts` the page's figures; and `bench` the
`ccrm bench` operations for search and timeline.
"""

from ccrm_core.librarian.customer360.bench import (
    BENCH_QUERY_MIX,
    bench_queries,
    bench_search,
    bench_timeline,
)
from ccrm_core.librarian.customer360.charts import chart_gauge, chart_timeline
from ccrm_core.librarian.customer360.customer_profile import (
    GOLDEN_FIELDS,
    SEGMENT_COLUMNS,
    VALUE_COLUMNS,
    CustomerProfile,
    data_as_of,
    mask_profile,
    profile,
    revenue_percentile,
    touches,
)
from ccrm_core.librarian.customer360.keys import (
    SearchQuery,
    id_key,
    normalise_text,
    parse_query,
    phone_digits,
    prefix_code,
)
from ccrm_core.librarian.customer360.lookup import (
    CANDIDATES,
    MAX_NAME_WORDS,
    MAX_QUERY_WORDS,
    MIN_WORD_SIMILARITY,
    PAGE_URL_PATH,
    RESULT_COLUMNS,
    SEARCH_FIELDS,
    WORDS_PER_QUERY_WORD,
    mask_results,
    profile_url,
    result_label,
    search,
    search_ready,
    search_statement,
    with_last_order,
)
from ccrm_core.librarian.customer360.next_action import channel_outcomes
from ccrm_core.librarian.customer360.stages import customer_timeline_stage, search_index_stage
from ccrm_core.librarian.customer360.timeline_page import (
    CHART_ROWS,
    TIMELINE_COLUMNS,
    TimelinePage,
    timeline,
)

__all__ = [
    "BENCH_QUERY_MIX",
    "CANDIDATES",
    "CHART_ROWS",
    "GOLDEN_FIELDS",
    "MAX_NAME_WORDS",
    "MAX_QUERY_WORDS",
    "MIN_WORD_SIMILARITY",
    "PAGE_URL_PATH",
    "RESULT_COLUMNS",
    "SEARCH_FIELDS",
    "SEGMENT_COLUMNS",
    "TIMELINE_COLUMNS",
    "VALUE_COLUMNS",
    "WORDS_PER_QUERY_WORD",
    "CustomerProfile",
    "SearchQuery",
    "TimelinePage",
    "bench_queries",
    "bench_search",
    "bench_timeline",
    "channel_outcomes",
    "chart_gauge",
    "result_label",
    "with_last_order",
    "chart_timeline",
    "customer_timeline_stage",
    "data_as_of",
    "id_key",
    "mask_profile",
    "mask_results",
    "normalise_text",
    "parse_query",
    "phone_digits",
    "prefix_code",
    "profile",
    "profile_url",
    "revenue_percentile",
    "search",
    "search_index_stage",
    "search_ready",
    "search_statement",
    "timeline",
    "touches",
]
