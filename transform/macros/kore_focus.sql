{#
  What kore_billing__focus (the charges in FOCUS 1.2 columns) reads from its vars, checked once,
  and how it names its columns.
#}

{# A FOCUS column name, quoted: PostgreSQL and Snowflake would fold BilledCost otherwise. #}
{% macro kore_focus_column(name) -%}
    {{ adapter.quote(name) }}
{%- endmacro %}


{# A text the var gave, as a SQL string literal (or null when empty). #}
{% macro kore_focus_text(value) -%}
    {%- if value -%}
    cast('{{ value | replace("'", "''") }}' as {{ dbt.type_string() }})
    {%- else -%}
    cast(null as {{ dbt.type_string() }})
    {%- endif -%}
{%- endmacro %}


{# var kore_billing_currency: the ISO 4217 code the prices are in (BillingCurrency), e.g. USD. #}
{% macro kore_focus_currency() -%}
    {%- set value = var('kore_billing_currency', 'USD') -%}
    {%- if value is not string or not modules.re.fullmatch('[A-Z]{3}', value) -%}
        {{ exceptions.raise_compiler_error(
            "var kore_billing_currency must be the ISO 4217 code of the currency the prices"
            ~ " are in, three capital letters such as USD or EUR, not '" ~ value ~ "'") }}
    {%- endif -%}
    {{ return(value) }}
{%- endmacro %}


{#
  var kore_billing_account_id: the BillingAccountId of every row. Kore.ai's billing APIs do not
  name the account, so the default is a placeholder that reads as one.
#}
{% macro kore_focus_account_id() -%}
    {%- set value = var('kore_billing_account_id', 'kore-ai-account') -%}
    {%- if value is number and value is not sameas true and value is not sameas false -%}
        {%- set value = value | string -%}
    {%- endif -%}
    {%- if value is not string or not value | trim -%}
        {{ exceptions.raise_compiler_error(
            "var kore_billing_account_id must be the ID of your Kore.ai account (the"
            ~ " BillingAccountId of every FOCUS row), a non-empty text, not '" ~ value ~ "'") }}
    {%- endif -%}
    {{ return(value | trim) }}
{%- endmacro %}


{# var kore_billing_account_name: the BillingAccountName; empty (the default): null. #}
{% macro kore_focus_account_name() -%}
    {%- set value = var('kore_billing_account_name', '') or '' -%}
    {%- if value is not string -%}
        {{ exceptions.raise_compiler_error(
            "var kore_billing_account_name must be the display name of your Kore.ai account,"
            ~ " a text, not '" ~ value ~ "'") }}
    {%- endif -%}
    {{ return(value | trim) }}
{%- endmacro %}


{#
  Says in the build's log which rows kore_billing__focus leaves out and why: every row without
  a price in var kore_billing_price_per_session, whether its type was found in the detail rows or
  only billed by the usage summary (FOCUS allows no null cost, and a cost of 0 would
  understate what was billed). Not an error: the other types' rows are right as they are.
#}
{% macro kore_focus_report_unpriced(model_name) -%}
    {%- if not execute -%}{{ return('') }}{%- endif -%}
    {%- set prices = kore_prices() -%}
    {%- if not prices -%}
        {%- do exceptions.warn(
            model_name ~ " is empty: var kore_billing_price_per_session prices no billing session"
            ~ " type, and FOCUS needs a cost on every row. Set it to the price of one billing"
            ~ " session per billingSessionType, e.g. {\"Conversations\": 0.01}.") -%}
        {{ return('') }}
    {%- endif -%}
    {%- set units = ['sessions', 'conversations', 'alert_notifications', 'proactive_notifications'] -%}
    {%- set billed = [] -%}
    {%- for unit in units -%}
        {%- do billed.append("(types.unit = '" ~ unit ~ "' and summary." ~ unit ~ " > 0)") -%}
    {%- endfor -%}
    {%- set found = run_query(
        "select billing_session_type from "
        ~ ref('stg_kore_billing__billing_sessions')
        ~ " where billing_session_type is not null"
        ~ " union select types.billing_session_type from "
        ~ ref('kore_billing__session_types') ~ " as types inner join "
        ~ ref('stg_kore_billing__billing_usage_summary') ~ " as summary on "
        ~ billed | join(' or ') ~ " where summary.granularity = 'day' order by 1") -%}
    {%- set unpriced = [] -%}
    {%- for row in found.rows if row[0] not in prices -%}
        {%- do unpriced.append("'" ~ row[0] ~ "'") -%}
    {%- endfor -%}
    {%- if unpriced -%}
        {%- do exceptions.warn(
            model_name ~ " leaves out the billing sessions of type " ~ unpriced | join(', ')
            ~ ": var kore_billing_price_per_session has no price for "
            ~ ("it" if unpriced | length == 1 else "them")
            ~ " (FOCUS allows no null cost, and 0 would understate the bill). Add "
            ~ ("its" if unpriced | length == 1 else "their") ~ " price to the var to include "
            ~ ("it" if unpriced | length == 1 else "them") ~ ".") -%}
    {%- endif -%}
    {{ return('') }}
{%- endmacro %}
