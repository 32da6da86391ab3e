"""The tap's settings: each one's name, type, default and description, declared once.

`tap-kore-billing --about`, the settings table of docs/settings.md (`make readme`) and Meltano's
plugin definition are all drawn from this schema; `settings_check.py` types and checks the values.
"""

from __future__ import annotations

from singer_sdk import typing as th

SECRET_SETTINGS = ("client_secret", "auth_token")

SETTINGS_SCHEMA: dict = th.PropertiesList(
    th.Property(
        "api_url",
        th.StringType,
        default="https://platform.kore.ai",
        title="API URL",
        description="Environment host: https://platform.kore.ai (global), "
        "https://de-platform.kore.ai (EU), https://jp-platform.kore.ai (JP), "
        "https://bots.kore.ai, or an on-premises host. Must be https (loopback excepted).",
    ),
    th.Property(
        "client_id",
        th.StringType,
        title="Client ID",
        description="Client ID of the app's credentials (the JWT's appId).",
    ),
    th.Property(
        "client_secret",
        th.StringType,
        secret=True,
        title="Client Secret",
        description="Secret. Client Secret of the app's credentials; signs the JWT (HS256).",
    ),
    th.Property(
        "auth_token",
        th.StringType,
        secret=True,
        title="Auth Token",
        description="Secret. A ready JWT, used as-is instead of client_id/client_secret.",
    ),
    th.Property(
        "api_scope",
        th.StringType,
        default="bot",
        allowed_values=["bot", "admin"],
        title="API Scope",
        description="`bot`: the app-scope path, one app at a time (needs bot_ids). "
        "`admin`: the account-wide Admin Console path.",
    ),
    th.Property(
        "bot_ids",
        th.ArrayType(th.StringType),
        title="App IDs",
        description="App (bot or stream) IDs, `st-...`. Required for api_scope `bot`; "
        "an optional filter for `admin` (empty: every app of the account).",
    ),
    th.Property(
        "include_linked_apps",
        th.BooleanType,
        default=True,
        title="Include Linked Apps",
        description="With bot_ids: also read the apps each listed app routes to (its "
        "published linked apps, from Get Linked Apps), in both billing streams. Kore.ai bills "
        "a routed session to the linked app, so a Parent's bill is incomplete without them; "
        "on by default so that an app linked later is not silently missing. A linked app "
        "these credentials cannot read is named in a warning and in the apps stream "
        "(billingReadable false), and does not fail the run.",
    ),
    th.Property(
        "channels",
        th.ArrayType(th.StringType),
        title="Channels",
        description="Optional channel codes; each is requested (and bookmarked) separately.",
    ),
    th.Property(
        "start_date",
        th.DateTimeType,
        required=True,
        title="Start Date",
        description="Earliest billing session to extract (ISO 8601; no zone means UTC).",
    ),
    th.Property(
        "end_date",
        th.DateTimeType,
        title="End Date",
        description="Latest billing session to extract, for bounded backfills. "
        "Default: the moment the run starts.",
    ),
    th.Property(
        "window_days",
        th.IntegerType(minimum=1, maximum=90),
        default=30,
        title="Window Days",
        description="Days per fromDate/toDate request window (1-90; never more than "
        "three calendar months, the API's limit).",
    ),
    th.Property(
        "page_size",
        th.IntegerType(minimum=1),
        default=1000,
        title="Page Size",
        description="`limit` asked per request. The server may send fewer rows; if it "
        "refuses more than the documented 100 (a 400 about the limit, or a 5xx), the run "
        "falls back to 100 after one request, with a warning.",
    ),
    th.Property(
        "lookback_hours",
        th.NumberType(minimum=0),
        default=24,
        title="Lookback Hours",
        description="Re-read this many hours before the bookmark, for sessions the API shows late.",
    ),
    th.Property(
        "requests_per_minute",
        th.IntegerType(minimum=1),
        default=60,
        title="Requests Per Minute",
        description="Client-side limit per quota holder (each app in `bot` scope, the "
        "account in `admin` scope), rolling minute.",
    ),
    th.Property(
        "requests_per_hour",
        th.IntegerType(minimum=1),
        default=1800,
        title="Requests Per Hour",
        description="Client-side limit per quota holder, rolling hour.",
    ),
    th.Property(
        "api_timezone",
        th.StringType,
        default="UTC",
        title="API Time Zone",
        description="IANA zone of the API's zone-less datetime strings.",
    ),
    th.Property(
        "max_workers",
        th.IntegerType(minimum=1, maximum=1024),
        default=256,
        title="Max Workers",
        description="Upper bound on requests in flight at once (one thread and one "
        "connection each). Every partition whose quota holder may call sends its request "
        "at once, every holder served in turn: about 0.3 requests in flight per app at 60 "
        "a minute and 300 ms a request, and up to one per app when many apps' minutes roll "
        "over together; the run logs a line when this bound, not the quotas, sets the "
        "pace. Lower it to be gentler on the API, a proxy or a small machine. Each "
        "partition's state stays exact.",
    ),
    th.Property(
        "request_timeout",
        th.NumberType(exclusive_minimum=0),
        default=60,
        title="Request Timeout",
        description="Seconds to wait for one API response.",
    ),
    th.Property(
        "retry_attempts",
        th.IntegerType(minimum=1),
        default=8,
        title="Retry Attempts",
        description="Tries per request for throttling (429), server errors, network "
        "failures and cut-off bodies.",
    ),
    th.Property(
        "retry_initial_delay",
        th.NumberType(minimum=0),
        default=1.0,
        title="Retry Initial Delay",
        description="Seconds before the first retry, doubling each time; a Retry-After "
        "header from the API takes precedence.",
    ),
    th.Property(
        "summary_granularity",
        th.StringType,
        default="day",
        allowed_values=["day", "hour", "month"],
        title="Usage Summary Granularity",
        description="Period of the billing_usage_summary stream's counters: `day`, `hour` "
        "or `month` (UTC buckets).",
    ),
    th.Property(
        "summary_lookback_days",
        th.IntegerType(minimum=0),
        default=3,
        title="Usage Summary Lookback Days",
        description="Days before the usage summary bookmark each run asks for again, "
        "because recent periods still change while late sessions are published.",
    ),
    th.Property(
        "summary_timeout_seconds",
        th.IntegerType(minimum=1),
        default=600,
        title="Usage Summary Timeout Seconds",
        description="How long one usage summary report job may take, from its start to its "
        "result, before the run fails.",
    ),
    th.Property(
        "summary_poll_seconds",
        th.NumberType(exclusive_minimum=0),
        default=1.0,
        title="Usage Summary Poll Seconds",
        description="Seconds before the first status check of a usage summary job; each "
        "later check waits 1.5 times longer, up to 30 s.",
    ),
).to_dict()

# The tap's own settings (not the SDK's stream-map ones, whose values may hold salts).
OWN_SETTINGS = frozenset(SETTINGS_SCHEMA["properties"])
