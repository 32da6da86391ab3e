{#-
  Each billing session checked against the rule Kore.ai bills by (its Plan and Usage pages: one
  billing session is at most 15 minutes of a user's activity): one row per billing session and
  finding it breaks, none for a session that breaks nothing. A finding needs its fields: a session without them is not flagged by it.

  - longer_than_15_minutes: it lasts more than 15 minutes plus the tolerance.
  - overlaps_another_session: it shares more than the tolerance with a session of the same
    kore_user_id, bot_id and channel that starts earlier (at the same second: the smaller
    billing_session_id counts as earlier). Sessions that touch (one ends as the next starts)
    share nothing. other_billing_session_id is the session it shares the most with (the first
    to start of those).
  - outside_its_conversation: it starts before its conversation session's start, or ends after
    its end, by more than the tolerance.

  The length and overlap rules apply to the types billed by 15-minute windows of activity: those
  the seed kore_billing__session_types maps to the units `conversations` and `sessions` (the
  older type, no conversation). Notifications are billed one per notification, so their length
  and their overlap with a conversation mean nothing. The conversation rule applies to every
  row that names a conversation session with its start and end. `detail` says "an unknown
  time" for a time the row lacks, so a null never fails the build.
-#}
{%- set tolerance = kore_audit_tolerance() -%}
{%- set window_seconds = 900 -%}
{%- set string = dbt.type_string() -%}

with

session_types as (
    select billing_session_type, unit
    from {{ ref('kore_billing__session_types') }}
),

sessions as (
    select
        sessions.*,
        {{ kore_day('sessions.' ~ kore_dated_by_column()) }} as billing_day,
        case
            when session_types.unit in ('conversations', 'sessions') then 1 else 0
        end as billed_by_window,
        {{ kore_seconds('sessions.billing_session_started_at', 'sessions.billing_session_ended_at') }}
            as session_seconds,
        coalesce({{ kore_timestamp_text('sessions.billing_session_started_at') }}, 'an unknown time')
            as started_text,
        coalesce({{ kore_timestamp_text('sessions.billing_session_ended_at') }}, 'an unknown time')
            as ended_text
    from {{ ref('stg_kore_billing__billing_sessions') }} as sessions
    left join session_types
        on sessions.billing_session_type = session_types.billing_session_type
),

longer_findings as (
    select
        billing_session_id,
        cast('longer_than_15_minutes' as {{ string }}) as finding,
        cast(null as {{ string }}) as other_billing_session_id,
        session_seconds - {{ window_seconds }} as excess_seconds,
        'Billing session ' || billing_session_id || ' lasted '
        || {{ kore_duration_text('session_seconds') }} || ' (' || started_text || ' to '
        || ended_text || ' UTC): Kore.ai bills at most 15 minutes of a user''s activity as one'
        || ' billing session, and this one is longer by more than the {{ tolerance }} s'
        || ' tolerance.' as detail
    from sessions
    where billed_by_window = 1
        and session_seconds > {{ window_seconds + tolerance }}
),

-- The sessions of each user, app and channel in order of start (then ID), each with the latest
-- end among those before it: the overlap with the earlier sessions is largest with that one, so
-- a window finds every overlap without comparing each pair.
timeline as (
    select
        billing_session_id,
        kore_user_id,
        bot_id,
        channel,
        billing_session_started_at,
        billing_session_ended_at,
        started_text,
        ended_text,
        lag(latest_end) over (
            partition by kore_user_id, bot_id, channel
            order by billing_session_started_at, {{ kore_id_order('billing_session_id') }}
        ) as latest_earlier_end
    from (
        select
            sessions.*,
            max(billing_session_ended_at) over (
                partition by kore_user_id, bot_id, channel
                order by billing_session_started_at, {{ kore_id_order('billing_session_id') }}
                rows between unbounded preceding and current row
            ) as latest_end
        from sessions
        where billed_by_window = 1
            and kore_user_id is not null
            and bot_id is not null
            and channel is not null
            and billing_session_started_at is not null
            and billing_session_ended_at is not null
    ) as running
),

overlapping as (
    select
        timeline.*,
        {{ kore_seconds(
            'billing_session_started_at',
            'case when latest_earlier_end < billing_session_ended_at'
            ~ ' then latest_earlier_end else billing_session_ended_at end'
        ) }} as shared_seconds
    from timeline
    where latest_earlier_end > billing_session_started_at
),

-- The earlier session each flagged one shares the most with (of several, the first to start).
overlap_ranked as (
    select
        later.billing_session_id,
        later.started_text,
        later.ended_text,
        later.shared_seconds,
        earlier.billing_session_id as other_billing_session_id,
        earlier.started_text as other_started_text,
        earlier.ended_text as other_ended_text,
        row_number() over (
            partition by later.billing_session_id
            order by
                earlier.billing_session_started_at,
                {{ kore_id_order('earlier.billing_session_id') }}
        ) as overlap_rank
    from overlapping as later
    inner join timeline as earlier
        on later.kore_user_id = earlier.kore_user_id
        and later.bot_id = earlier.bot_id
        and later.channel = earlier.channel
        and (
            earlier.billing_session_started_at < later.billing_session_started_at
            or (
                earlier.billing_session_started_at = later.billing_session_started_at
                and {{ kore_id_order('earlier.billing_session_id') }}
                    < {{ kore_id_order('later.billing_session_id') }}
            )
        )
        and {{ kore_seconds('later.billing_session_started_at', 'earlier.billing_session_ended_at') }}
            >= later.shared_seconds
    where later.shared_seconds > {{ tolerance }}
),

overlap_findings as (
    select
        billing_session_id,
        cast('overlaps_another_session' as {{ string }}) as finding,
        other_billing_session_id,
        shared_seconds as excess_seconds,
        'Billing session ' || billing_session_id || ' (' || started_text || ' to ' || ended_text
        || ' UTC) overlaps billing session ' || other_billing_session_id || ' ('
        || other_started_text || ' to ' || other_ended_text || ' UTC) of the same user, app and'
        || ' channel by ' || {{ kore_duration_text('shared_seconds') }}
        || ': those minutes are billed twice, and the overlap exceeds the {{ tolerance }} s'
        || ' tolerance.' as detail
    from overlap_ranked
    where overlap_rank = 1
),

conversation_edges as (
    select
        sessions.*,
        {{ kore_seconds('billing_session_started_at', 'conversation_session_started_at') }}
            as seconds_before,
        {{ kore_seconds('conversation_session_ended_at', 'billing_session_ended_at') }}
            as seconds_after,
        coalesce({{ kore_timestamp_text('conversation_session_started_at') }}, 'an unknown time')
            as conversation_started_text,
        coalesce({{ kore_timestamp_text('conversation_session_ended_at') }}, 'an unknown time')
            as conversation_ended_text
    from sessions
    where conversation_session_id is not null
),

outside_findings as (
    select
        billing_session_id,
        cast('outside_its_conversation' as {{ string }}) as finding,
        cast(null as {{ string }}) as other_billing_session_id,
        case when seconds_before > 0 then seconds_before else 0 end
        + case when seconds_after > 0 then seconds_after else 0 end as excess_seconds,
        'Billing session ' || billing_session_id || ' (' || started_text || ' to ' || ended_text
        || ' UTC) '
        || case
            when seconds_before > {{ tolerance }} and seconds_after > {{ tolerance }}
                then 'starts ' || {{ kore_duration_text('seconds_before') }} || ' before and ends '
                    || {{ kore_duration_text('seconds_after') }} || ' after'
            when seconds_before > {{ tolerance }}
                then 'starts ' || {{ kore_duration_text('seconds_before') }} || ' before'
            else 'ends ' || {{ kore_duration_text('seconds_after') }} || ' after'
        end
        || ' its conversation session ' || conversation_session_id || ' ('
        || conversation_started_text || ' to ' || conversation_ended_text
        || ' UTC): a billing session lies within its conversation session, and this one is'
        || ' outside it by more than the {{ tolerance }} s tolerance.' as detail
    from conversation_edges
    where seconds_before > {{ tolerance }}
        or seconds_after > {{ tolerance }}
),

findings as (
    select * from longer_findings
    union all
    select * from overlap_findings
    union all
    select * from outside_findings
),

-- At most one row per bot_id (a tested key), so the join adds a name and never a row.
apps as (
    select bot_id, app_name
    from {{ ref('stg_kore_billing__apps') }}
)

select
    sessions.bot_id,
    apps.app_name,
    sessions.billing_session_id,
    sessions.billing_session_type,
    sessions.channel,
    sessions.kore_user_id,
    sessions.conversation_session_id,
    sessions.billing_session_started_at,
    sessions.billing_session_ended_at,
    sessions.conversation_session_started_at,
    sessions.conversation_session_ended_at,
    sessions.billing_day,
    findings.finding,
    findings.other_billing_session_id,
    cast(findings.excess_seconds as {{ dbt.type_bigint() }}) as excess_seconds,
    findings.detail
from findings
inner join sessions
    on findings.billing_session_id = sessions.billing_session_id
left join apps
    on sessions.bot_id = apps.bot_id
