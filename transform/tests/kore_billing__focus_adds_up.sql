{{ config(meta={'dagster': {'ref': {'name': 'kore_billing__focus'}}}) }}
{# meta: Dagster shows this test as a check of kore_billing__focus. #}
{#
  kore_billing__focus prices every billing session of a priced type once and every excess
  session of the audit once: per type, its BilledCost adds up to the staged sessions (dated, of
  an app) times the type's price, its x_DisputedCost to the conversation audit's excess sessions
  (of an app, and a conversation with a start) times the Conversations price; on every row each cost is its quantity times its unit price.
  Returns each total or row that differs, with both values.
#}
{%- set prices = kore_prices() -%}
{%- set amount = kore_amount_type() -%}
{%- set dated_by = kore_dated_by_column() -%}
{%- if not prices %}
select
    cast(null as {{ dbt.type_string() }}) as total,
    cast(null as {{ amount }}) as expected,
    cast(null as {{ amount }}) as in_focus
where 1 = 0
{%- else %}
with

expected_billed as (
    select
        billing_session_type,
        cast(count(*) * {{ kore_price_of('billing_session_type') }} as {{ amount }}) as expected
    from {{ ref('stg_kore_billing__billing_sessions') }}
    where {{ dated_by }} is not null
        and bot_id is not null
        and {{ kore_price_of('billing_session_type') }} is not null
    group by billing_session_type
),

focus_billed as (
    select
        {{ kore_focus_column('x_BillingSessionType') }} as billing_session_type,
        -- cast: fakesnow (Snowflake on DuckDB) sums decimals as doubles
        cast(sum({{ kore_focus_column('BilledCost') }}) as {{ amount }}) as in_focus
    from {{ ref('kore_billing__focus') }}
    group by {{ kore_focus_column('x_BillingSessionType') }}
),

totals as (
    select
        'BilledCost of ' || coalesce(expected_billed.billing_session_type, focus_billed.billing_session_type)
            as total,
        coalesce(expected_billed.expected, 0) as expected,
        coalesce(focus_billed.in_focus, 0) as in_focus
    from expected_billed
    full outer join focus_billed
        on expected_billed.billing_session_type = focus_billed.billing_session_type
    {%- if 'Conversations' in prices %}
    union all
    select
        'x_DisputedCost',
        cast(
            (
                select coalesce(sum(excess_sessions), 0)
                from {{ ref('kore_billing__conversation_audit') }}
                where conversation_session_started_at is not null
                    and bot_id is not null
            ) * {{ kore_price_of("'Conversations'") }}
            as {{ amount }}
        ),
        (
            select cast(coalesce(sum({{ kore_focus_column('x_DisputedCost') }}), 0) as {{ amount }})
            from {{ ref('kore_billing__focus') }}
        )
    {%- endif %}
    union all
    select
        'a row whose cost is not its quantity times its unit price',
        cast(0 as {{ amount }}),
        cast(count(*) as {{ amount }})
    from {{ ref('kore_billing__focus') }}
    where {{ kore_focus_column('ListCost') }} <> {{ kore_focus_column('ListUnitPrice') }} * {{ kore_focus_column('PricingQuantity') }}
        or {{ kore_focus_column('ContractedCost') }} <> {{ kore_focus_column('ContractedUnitPrice') }} * {{ kore_focus_column('PricingQuantity') }}
        or {{ kore_focus_column('BilledCost') }} <> {{ kore_focus_column('ListCost') }}
        or {{ kore_focus_column('EffectiveCost') }} <> {{ kore_focus_column('ListCost') }}
        or {{ kore_focus_column('x_DisputedCost') }} <> {{ kore_focus_column('x_ExcessSessions') }} * {{ kore_focus_column('ListUnitPrice') }}
)

select *
from totals
where expected <> in_focus
{%- endif %}
