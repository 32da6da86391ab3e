{#-
  Each conversation session against the number of billing sessions that name it. A conversation
  of L seconds holds at most max(1, ceil(L / 900)) billing sessions of 15 minutes; more is
  over-counting. Fewer is not an overcharge, and how idle gaps count is not documented, so only
  counts above that are flagged.

  One row per bot_id and conversation_session_id named by a billing session. The conversation's
  user, channel, start and end are repeated on each of its billing sessions; should they differ,
  the smallest user ID and channel, the earliest start and the latest end are kept. Without a
  start or an end its length is unknown: expected_at_most is null and it is not flagged.
  billing_day is the UTC day of its first billing session (by var reconcile_on, like
  kore_billing__audit_daily), so its excess lands on a day that has its sessions.
-#}
{%- set priced = kore_prices() | length > 0 -%}
{%- set dated_by = kore_dated_by_column() -%}

with

billed as (
    select
        bot_id,
        conversation_session_id,
        min(kore_user_id) as kore_user_id,
        min(channel) as channel,
        min(conversation_session_started_at) as conversation_session_started_at,
        max(conversation_session_ended_at) as conversation_session_ended_at,
        count(*) as billing_sessions,
        min({{ dated_by }}) as first_dated_at
        {%- if priced %},
        -- One price per conversation: that of its sessions' type, when they agree.
        case
            when count(*) = count({{ kore_price_of('billing_session_type') }})
                and min({{ kore_price_of('billing_session_type') }})
                    = max({{ kore_price_of('billing_session_type') }})
            then min({{ kore_price_of('billing_session_type') }})
        end as session_price
        {%- endif %}
    from {{ ref('stg_kore_billing__billing_sessions') }}
    where conversation_session_id is not null
    group by bot_id, conversation_session_id
),

timed as (
    select
        billed.*,
        {{ kore_seconds('conversation_session_started_at', 'conversation_session_ended_at') }}
            as conversation_seconds
    from billed
),

expected as (
    select
        timed.*,
        case
            when conversation_seconds is null then null
            when conversation_seconds <= 900 then 1
            else cast(ceil(conversation_seconds / 900.0) as {{ dbt.type_bigint() }})
        end as expected_at_most
    from timed
),

judged as (
    select
        expected.*,
        case
            when billing_sessions > expected_at_most then billing_sessions - expected_at_most
            else 0
        end as excess_sessions
    from expected
),

-- At most one row per bot_id (a tested key), so the join adds a name and never a row.
apps as (
    select bot_id, app_name
    from {{ ref('stg_kore_billing__apps') }}
)

select
    judged.bot_id,
    apps.app_name,
    judged.conversation_session_id,
    judged.kore_user_id,
    judged.channel,
    judged.conversation_session_started_at,
    judged.conversation_session_ended_at,
    judged.conversation_seconds,
    cast(judged.billing_sessions as {{ dbt.type_bigint() }}) as billing_sessions,
    cast(judged.expected_at_most as {{ dbt.type_bigint() }}) as expected_at_most,
    cast(judged.excess_sessions as {{ dbt.type_bigint() }}) as excess_sessions,
    case when judged.excess_sessions > 0 then 'over_counted' else 'ok' end as status,
    {{ kore_day('judged.first_dated_at') }} as billing_day
    {%- if priced %},
    judged.session_price,
    cast(judged.excess_sessions * judged.session_price as {{ kore_amount_type() }})
        as excess_amount
    {%- endif %}
from judged
left join apps
    on judged.bot_id = apps.bot_id
