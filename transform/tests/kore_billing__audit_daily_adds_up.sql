{{ config(meta={'dagster': {'ref': {'name': 'kore_billing__audit_daily'}}}) }}
{# meta: Dagster shows this test as a check of kore_billing__audit_daily. #}
{#
  kore_billing__audit_daily holds every billing session once, every flagged session once and
  every over-counted conversation's excess once: its totals equal those of the staged sessions,
  of kore_billing__session_audit and of kore_billing__conversation_audit. Returns each total
  that differs, with both values.
#}
{%- set bigint = dbt.type_bigint() -%}
with

totals as (
    select
        'sessions' as total,
        cast((select count(*) from {{ ref('stg_kore_billing__billing_sessions') }}) as {{ bigint }})
            as in_the_details,
        cast((select coalesce(sum(sessions), 0) from {{ ref('kore_billing__audit_daily') }})
            as {{ bigint }}) as in_audit_daily
    union all
    select
        'flagged_sessions',
        cast((select count(distinct billing_session_id) from {{ ref('kore_billing__session_audit') }})
            as {{ bigint }}),
        cast((select coalesce(sum(flagged_sessions), 0) from {{ ref('kore_billing__audit_daily') }})
            as {{ bigint }})
    union all
    select
        'excess_sessions',
        cast((select coalesce(sum(excess_sessions), 0) from {{ ref('kore_billing__conversation_audit') }})
            as {{ bigint }}),
        cast((select coalesce(sum(excess_sessions), 0) from {{ ref('kore_billing__audit_daily') }})
            as {{ bigint }})
)

select *
from totals
where in_the_details <> in_audit_daily
