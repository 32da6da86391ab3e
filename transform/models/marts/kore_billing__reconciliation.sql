{#-
  The invoice check: for every app (or app group), period and unit, the number of billing
  sessions extracted (detail_count) against the usage summary's counter (summary_count).

  - Periods and granularities come from the summary: each (bot_id, granularity) the summary has
    is reconciled from its first period to the end of its last one. Detail rows outside that
    range, or of an app the summary does not cover, are not part of the check.
  - A session counts in the period its start (var reconcile_on: start, the default) or its end
    (reconcile_on: end) falls in, in UTC.
  - Summary botId values in var all_apps_bot_ids (`ALL`) stand for every app: their periods are
    compared with the sessions of all apps.
  - Either side may be missing: a period with sessions but no summary row (or a null counter)
    has summary_count null; a summary period without sessions has detail_count 0. difference
    and status count a missing summary value as 0.
  - status: `open` while the period has not ended (var reconcile_as_of, default now, UTC), else
    `match` when difference is 0, else `mismatch`.
  - app_name comes from the apps stream; null for an app it does not list (or not loaded) and
    for app groups.
  - With var kore_billing_price_per_session: unit_price (the price of the session type the seed
    maps to the unit; null when no type of the unit has one, or its types' prices differ) and
    each count times it. Without the var these columns do not exist.
-#}
{%- set reconcile_on = kore_reconcile_on() -%}
{%- set priced = kore_prices() | length > 0 -%}
{%- set all_apps_bot_ids = var('all_apps_bot_ids', ['ALL']) -%}
{%- set units = ['sessions', 'conversations', 'alert_notifications', 'proactive_notifications'] -%}

with

session_types as (
    select billing_session_type, unit
    from {{ ref('kore_billing__session_types') }}
),

sessions as (
    select
        sessions.bot_id,
        session_types.unit,
        sessions.billing_session_{{ 'started_at' if reconcile_on == 'start' else 'ended_at' }}
            as billed_at
    from {{ ref('stg_kore_billing__billing_sessions') }} as sessions
    inner join session_types
        on sessions.billing_session_type = session_types.billing_session_type
),

summary as (
    select *
    from {{ ref('stg_kore_billing__billing_usage_summary') }}
),

-- The range each app (or app group) and granularity of the summary covers.
coverage as (
    select
        bot_id,
        granularity,
        min(period_start) as covered_from,
        max(period_end) as covered_until
    from summary
    group by bot_id, granularity
),

detail_counts as (
    select
        coverage.bot_id,
        coverage.granularity,
        {{ kore_period_start('coverage.granularity', 'sessions.billed_at') }} as period_start,
        sessions.unit,
        count(*) as detail_count
    from sessions
    inner join coverage
        on (
            coverage.bot_id = sessions.bot_id
            {%- if all_apps_bot_ids %}
            or coverage.bot_id in (
                {%- for bot_id in all_apps_bot_ids -%}
                '{{ bot_id | replace("'", "''") }}'{{ ", " if not loop.last }}
                {%- endfor -%}
            )
            {%- endif %}
        )
        and sessions.billed_at >= coverage.covered_from
        and sessions.billed_at < coverage.covered_until
    group by
        coverage.bot_id,
        coverage.granularity,
        {{ kore_period_start('coverage.granularity', 'sessions.billed_at') }},
        sessions.unit
),

summary_counts as (
    {%- for unit in units %}
    select
        bot_id,
        granularity,
        period_start,
        cast('{{ unit }}' as {{ dbt.type_string() }}) as unit,
        {{ unit }} as summary_count
    from summary
    {{ "union all" if not loop.last }}
    {%- endfor %}
),

joined as (
    select
        coalesce(detail_counts.bot_id, summary_counts.bot_id) as bot_id,
        coalesce(detail_counts.granularity, summary_counts.granularity) as granularity,
        coalesce(detail_counts.period_start, summary_counts.period_start) as period_start,
        coalesce(detail_counts.unit, summary_counts.unit) as unit,
        cast(coalesce(detail_counts.detail_count, 0) as {{ dbt.type_bigint() }}) as detail_count,
        cast(summary_counts.summary_count as {{ dbt.type_bigint() }}) as summary_count
    from detail_counts
    full outer join summary_counts
        on detail_counts.bot_id = summary_counts.bot_id
        and detail_counts.granularity = summary_counts.granularity
        and detail_counts.period_start = summary_counts.period_start
        and detail_counts.unit = summary_counts.unit
),

periods as (
    select
        joined.*,
        {{ kore_period_end('granularity', 'period_start') }} as period_end
    from joined
),

-- At most one row per bot_id (a tested key), so the join adds a name and never a row.
apps as (
    select bot_id, app_name
    from {{ ref('stg_kore_billing__apps') }}
)
{%- if priced %},

unit_prices as (
    select
        unit,
        case
            when count(*) = count(session_price) and min(session_price) = max(session_price)
            then min(session_price)
        end as unit_price
    from (
        select unit, {{ kore_price_of('billing_session_type') }} as session_price
        from session_types
    ) as priced_types
    group by unit
)
{%- endif %}

select
    periods.bot_id,
    apps.app_name,
    granularity,
    period_start,
    period_end,
    periods.unit,
    detail_count,
    summary_count,
    detail_count - coalesce(summary_count, 0) as difference,
    case
        when period_end > {{ kore_reconcile_as_of() }} then 'open'
        when detail_count = coalesce(summary_count, 0) then 'match'
        else 'mismatch'
    end as status,
    cast('{{ reconcile_on }}' as {{ dbt.type_string() }}) as reconciled_on
    {%- if priced %},
    unit_prices.unit_price,
    cast(detail_count * unit_prices.unit_price as {{ kore_amount_type() }}) as detail_amount,
    cast(summary_count * unit_prices.unit_price as {{ kore_amount_type() }}) as summary_amount,
    cast(
        (detail_count - coalesce(summary_count, 0)) * unit_prices.unit_price
        as {{ kore_amount_type() }}
    ) as difference_amount
    {%- endif %}
from periods
left join apps
    on periods.bot_id = apps.bot_id
{%- if priced %}
left join unit_prices
    on periods.unit = unit_prices.unit
{%- endif %}
