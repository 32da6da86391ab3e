{#-
  The audit by app and UTC day, for a finance reader: how many billing sessions the day has, how
  many break the billing rule (kore_billing__session_audit, by finding) and how many billing
  sessions over-counted conversations add (kore_billing__conversation_audit). A month's excess is
  one sum over its days.

  A session's day is the UTC day of its start, or of its end with var reconcile_on: end (as the
  reconciliation files it; how Kore.ai dates a session that crosses midnight is not documented).
  A conversation counts on the day of its first billing session. Sessions without that timestamp
  are counted on a row whose billing_day is null.

  With var kore_billing_price_per_session: billed_amount (every session of the day priced by its
  type), flagged_amount (the sessions with a finding) and excess_amount (the excess sessions of
  over-counted conversations, at their conversation's price). A session can be both flagged and
  an excess one, so the last two are not to be added. An amount is null when a session it needs
  has a type the var does not price.
-#}
{%- set priced = kore_prices() | length > 0 -%}
{%- set findings = ['longer_than_15_minutes', 'overlaps_another_session', 'outside_its_conversation'] -%}

with

sessions as (
    select
        bot_id,
        billing_session_id,
        {{ kore_day(kore_dated_by_column()) }} as billing_day
        {%- if priced %},
        {{ kore_price_of('billing_session_type') }} as session_price
        {%- endif %}
    from {{ ref('stg_kore_billing__billing_sessions') }}
),

flags as (
    select
        billing_session_id,
        {%- for finding in findings %}
        max(case when finding = '{{ finding }}' then 1 else 0 end) as {{ finding }}
        {{- "," if not loop.last }}
        {%- endfor %}
    from {{ ref('kore_billing__session_audit') }}
    group by billing_session_id
),

flagged as (
    select
        sessions.*,
        case when flags.billing_session_id is null then 0 else 1 end as flagged,
        {%- for finding in findings %}
        coalesce(flags.{{ finding }}, 0) as {{ finding }}
        {{- "," if not loop.last }}
        {%- endfor %}
    from sessions
    left join flags
        on sessions.billing_session_id = flags.billing_session_id
),

session_days as (
    select
        bot_id,
        billing_day,
        count(*) as sessions,
        sum(flagged) as flagged_sessions,
        {%- for finding in findings %}
        sum({{ finding }}) as {{ finding }}
        {{- "," if not loop.last }}
        {%- endfor %}
        {%- if priced %},
        {{ kore_sum_amount('1', 'session_price') }} as billed_amount,
        {{ kore_sum_amount('flagged', 'session_price') }} as flagged_amount
        {%- endif %}
    from flagged
    group by bot_id, billing_day
),

conversation_days as (
    select
        bot_id,
        billing_day,
        sum(case when status = 'over_counted' then 1 else 0 end) as over_counted_conversations,
        sum(excess_sessions) as excess_sessions
        {%- if priced %},
        {{ kore_sum_amount('excess_sessions', 'session_price') }} as excess_amount
        {%- endif %}
    from {{ ref('kore_billing__conversation_audit') }}
    group by bot_id, billing_day
),

-- At most one row per bot_id (a tested key), so the join adds a name and never a row.
apps as (
    select bot_id, app_name
    from {{ ref('stg_kore_billing__apps') }}
)

select
    session_days.bot_id,
    apps.app_name,
    session_days.billing_day,
    cast(session_days.sessions as {{ dbt.type_bigint() }}) as sessions,
    cast(session_days.flagged_sessions as {{ dbt.type_bigint() }}) as flagged_sessions,
    {%- for finding in findings %}
    cast(session_days.{{ finding }} as {{ dbt.type_bigint() }}) as {{ finding }},
    {%- endfor %}
    cast(coalesce(conversation_days.over_counted_conversations, 0) as {{ dbt.type_bigint() }})
        as over_counted_conversations,
    cast(coalesce(conversation_days.excess_sessions, 0) as {{ dbt.type_bigint() }})
        as excess_sessions,
    cast('{{ kore_reconcile_on() }}' as {{ dbt.type_string() }}) as dated_on
    {%- if priced %},
    session_days.billed_amount,
    session_days.flagged_amount,
    case
        when conversation_days.bot_id is null then cast(0 as {{ kore_amount_type() }})
        else conversation_days.excess_amount
    end as excess_amount
    {%- endif %}
from session_days
left join conversation_days
    on session_days.bot_id = conversation_days.bot_id
    and (
        session_days.billing_day = conversation_days.billing_day
        or (session_days.billing_day is null and conversation_days.billing_day is null)
    )
left join apps
    on session_days.bot_id = apps.bot_id
