{#-
  The charges in FOCUS 1.2 (the FinOps Foundation's billing data standard): one row per app, UTC
  day and billing session type, its columns spelled as FOCUS spells them, so that an export is a
  plain `select *` (docs/focus.md).

  - The day is that of a session's start, or its end with var reconcile_on: end, as the
    reconciliation files it. Quantities are the billing sessions found; each cost is quantity x
    the type's price in var kore_billing_price_per_session.
  - A type the var does not price has no row (FOCUS allows no null cost, and 0 would understate
    the bill); the build's log names it. Without any price the model is empty, and says so.
  - x_ExcessSessions and x_DisputedCost: the excess billing sessions of over-counted
    conversations (kore_billing__conversation_audit) and their cost, on the Conversations row of
    the app and the UTC day the conversation started (the issue's rule: where a conversation
    starts before midnight and its first billing session after, kore_billing__audit_daily, which
    dates it by that session, shows it a day later), 0 on every other row, so that a sum counts
    each once.
  - x_UsageSummarySessions: the usage summary's counter (granularity day) of the unit the seed
    kore_billing__session_types maps the type to: what the invoice bills beside what was found.
  - A row exists where sessions were found, where the summary billed some, or where an excess
    lies: a day the summary bills and no session was found has ConsumedQuantity 0.
-#}
{%- do kore_focus_report_unpriced(this.identifier) -%}
{%- set amount = kore_amount_type() -%}
{%- set string = dbt.type_string() -%}
{%- set timestamp = dbt.type_timestamp() -%}
{%- set dated_by = kore_dated_by_column() -%}
{%- set all_apps_bot_ids = var('all_apps_bot_ids', ['ALL']) -%}
{%- set units = ['sessions', 'conversations', 'alert_notifications', 'proactive_notifications'] -%}
{%- set kore = "cast('Kore.ai' as " ~ string ~ ")" -%}
{%- set unit_word = "cast('Billing Sessions' as " ~ string ~ ")" -%}

with

session_types as (
    select billing_session_type, unit
    from {{ ref('kore_billing__session_types') }}
),

found as (
    select
        bot_id,
        {{ kore_day(dated_by) }} as charge_day,
        billing_session_type,
        count(*) as billing_sessions
    from {{ ref('stg_kore_billing__billing_sessions') }}
    where {{ dated_by }} is not null
        and billing_session_type is not null
        and bot_id is not null
    group by bot_id, {{ kore_day(dated_by) }}, billing_session_type
),

-- The summary's day counters, one per type through the seed; app groups such as ALL left out.
billed as (
    {%- for unit in units %}
    select
        summary.bot_id,
        cast(summary.period_start as date) as charge_day,
        session_types.billing_session_type,
        summary.{{ unit }} as summary_sessions
    from {{ ref('stg_kore_billing__billing_usage_summary') }} as summary
    inner join session_types
        on session_types.unit = '{{ unit }}'
    where summary.granularity = 'day'
        and summary.{{ unit }} is not null
        {%- if all_apps_bot_ids %}
        and summary.bot_id not in (
            {%- for bot_id in all_apps_bot_ids -%}
            '{{ bot_id | replace("'", "''") }}'{{ ", " if not loop.last }}
            {%- endfor -%}
        )
        {%- endif %}
    {{ "union all" if not loop.last }}
    {%- endfor %}
),

-- The audit's excess per app and day the conversation started, on the Conversations row (an
-- over-counted conversation has a known length, so a start).
excess as (
    select
        bot_id,
        {{ kore_day('conversation_session_started_at') }} as charge_day,
        cast('Conversations' as {{ string }}) as billing_session_type,
        sum(excess_sessions) as excess_sessions
    from {{ ref('kore_billing__conversation_audit') }}
    where excess_sessions > 0
        and conversation_session_started_at is not null
        and bot_id is not null
    group by bot_id, {{ kore_day('conversation_session_started_at') }}
),

charges as (
    select bot_id, charge_day, billing_session_type from found
    union
    select bot_id, charge_day, billing_session_type from billed where summary_sessions > 0
    union
    select bot_id, charge_day, billing_session_type from excess
),

priced as (
    select
        charges.bot_id,
        charges.charge_day,
        charges.billing_session_type,
        {{ kore_price_of('charges.billing_session_type') }} as unit_price,
        cast(coalesce(found.billing_sessions, 0) as {{ amount }}) as quantity,
        cast(billed.summary_sessions as {{ amount }}) as summary_sessions,
        cast(coalesce(excess.excess_sessions, 0) as {{ amount }}) as excess_sessions,
        cast(charges.charge_day as {{ timestamp }}) as day_start,
        cast(
            {{ dbt.date_trunc('month', 'cast(charges.charge_day as ' ~ timestamp ~ ')') }}
            as {{ timestamp }}
        ) as month_start
    from charges
    left join found
        on charges.bot_id = found.bot_id
        and charges.charge_day = found.charge_day
        and charges.billing_session_type = found.billing_session_type
    left join billed
        on charges.bot_id = billed.bot_id
        and charges.charge_day = billed.charge_day
        and charges.billing_session_type = billed.billing_session_type
    left join excess
        on charges.bot_id = excess.bot_id
        and charges.charge_day = excess.charge_day
        and charges.billing_session_type = excess.billing_session_type
),

-- At most one row per bot_id (a tested key), so the join adds a name and never a row.
apps as (
    select bot_id, app_name
    from {{ ref('stg_kore_billing__apps') }}
),

costed as (
    select
        priced.*,
        apps.app_name,
        cast(priced.quantity * priced.unit_price as {{ amount }}) as cost
    from priced
    left join apps
        on priced.bot_id = apps.bot_id
    where priced.unit_price is not null
)

select
    cost as {{ kore_focus_column('BilledCost') }},
    {{ kore_focus_text(kore_focus_account_id()) }} as {{ kore_focus_column('BillingAccountId') }},
    {{ kore_focus_text(kore_focus_account_name()) }} as {{ kore_focus_column('BillingAccountName') }},
    {{ kore_focus_text(kore_focus_currency()) }} as {{ kore_focus_column('BillingCurrency') }},
    cast({{ dbt.dateadd('month', 1, 'month_start') }} as {{ timestamp }})
        as {{ kore_focus_column('BillingPeriodEnd') }},
    month_start as {{ kore_focus_column('BillingPeriodStart') }},
    cast('Usage' as {{ string }}) as {{ kore_focus_column('ChargeCategory') }},
    cast(null as {{ string }}) as {{ kore_focus_column('ChargeClass') }},
    cast('Kore.ai XO Platform billing sessions of type ' as {{ string }}) || billing_session_type
        as {{ kore_focus_column('ChargeDescription') }},
    cast('Usage-Based' as {{ string }}) as {{ kore_focus_column('ChargeFrequency') }},
    cast({{ dbt.dateadd('day', 1, 'day_start') }} as {{ timestamp }})
        as {{ kore_focus_column('ChargePeriodEnd') }},
    day_start as {{ kore_focus_column('ChargePeriodStart') }},
    quantity as {{ kore_focus_column('ConsumedQuantity') }},
    {{ unit_word }} as {{ kore_focus_column('ConsumedUnit') }},
    cost as {{ kore_focus_column('ContractedCost') }},
    unit_price as {{ kore_focus_column('ContractedUnitPrice') }},
    cost as {{ kore_focus_column('EffectiveCost') }},
    cast(null as {{ string }}) as {{ kore_focus_column('InvoiceId') }},
    {{ kore }} as {{ kore_focus_column('InvoiceIssuerName') }},
    cost as {{ kore_focus_column('ListCost') }},
    unit_price as {{ kore_focus_column('ListUnitPrice') }},
    cast('Standard' as {{ string }}) as {{ kore_focus_column('PricingCategory') }},
    quantity as {{ kore_focus_column('PricingQuantity') }},
    {{ unit_word }} as {{ kore_focus_column('PricingUnit') }},
    {{ kore }} as {{ kore_focus_column('ProviderName') }},
    {{ kore }} as {{ kore_focus_column('PublisherName') }},
    bot_id as {{ kore_focus_column('ResourceId') }},
    app_name as {{ kore_focus_column('ResourceName') }},
    cast('App' as {{ string }}) as {{ kore_focus_column('ResourceType') }},
    cast('AI and Machine Learning' as {{ string }}) as {{ kore_focus_column('ServiceCategory') }},
    cast('Kore.ai XO Platform' as {{ string }}) as {{ kore_focus_column('ServiceName') }},
    cast('Bots' as {{ string }}) as {{ kore_focus_column('ServiceSubcategory') }},
    billing_session_type as {{ kore_focus_column('x_BillingSessionType') }},
    excess_sessions as {{ kore_focus_column('x_ExcessSessions') }},
    cast(excess_sessions * unit_price as {{ amount }}) as {{ kore_focus_column('x_DisputedCost') }},
    summary_sessions as {{ kore_focus_column('x_UsageSummarySessions') }}
from costed
