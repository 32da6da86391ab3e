-- One row per app (or app group), granularity and period: the usage summary's counters, from
-- the newest copy of each key (each run sends recent periods again, with their counters then).
with summary as (
{{ kore_stage('billing_usage_summary', [
    ('botId', 'bot_id', dbt.type_string()),
    ('granularity', 'granularity', dbt.type_string()),
    ('periodStart', 'period_start', dbt.type_timestamp()),
    ('requests', 'requests', dbt.type_bigint()),
    ('sessions', 'sessions', dbt.type_bigint()),
    ('conversations', 'conversations', dbt.type_bigint()),
    ('alert_notifications', 'alert_notifications', dbt.type_bigint()),
    ('proactive_notifications', 'proactive_notifications', dbt.type_bigint()),
], keys=['botId', 'granularity', 'periodStart']) }}
)

select
    bot_id,
    lower(granularity) as granularity,
    period_start,
    {{ kore_period_end('lower(granularity)', 'period_start') }} as period_end,
    requests,
    sessions,
    conversations,
    alert_notifications,
    proactive_notifications
from summary
