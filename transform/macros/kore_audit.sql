{#
  What the audit models (models/audit) and the money columns share: the vars, read and checked
  once, and the few expressions that differ between warehouses.
#}

{# var kore_billing_audit_tolerance_seconds: a whole number of seconds, 0 or more. #}
{% macro kore_audit_tolerance() -%}
    {%- set value = var('kore_billing_audit_tolerance_seconds', 60) -%}
    {%- if value is string and value | trim | int | string == value | trim -%}
        {%- set value = value | trim | int -%}
    {%- endif -%}
    {%- if value is not number or value is sameas true or value is sameas false
        or value < 0 or value != value | int -%}
        {{ exceptions.raise_compiler_error(
            "var kore_billing_audit_tolerance_seconds must be a whole number of seconds, 0 or"
            ~ " more, not '" ~ value ~ "'") }}
    {%- endif -%}
    {{ return(value | int) }}
{%- endmacro %}


{# var reconcile_on, checked: which session timestamp dates a session ('start' or 'end'). #}
{% macro kore_reconcile_on() -%}
    {%- set value = var('reconcile_on', 'start') -%}
    {%- if value not in ['start', 'end'] -%}
        {{ exceptions.raise_compiler_error(
            "var reconcile_on must be 'start' or 'end', not '" ~ value ~ "'") }}
    {%- endif -%}
    {{ return(value) }}
{%- endmacro %}


{# The column of stg_kore_billing__billing_sessions that var reconcile_on names. #}
{% macro kore_dated_by_column() -%}
    {{- 'billing_session_started_at' if kore_reconcile_on() == 'start' else 'billing_session_ended_at' -}}
{%- endmacro %}


{# The UTC day (a date) of a timestamp column. #}
{% macro kore_day(timestamp) -%}
    cast({{ dbt.date_trunc('day', timestamp) }} as date)
{%- endmacro %}


{# Whole seconds from `first` to `second` (negative when `second` is earlier). #}
{% macro kore_seconds(first, second) -%}
    cast({{ dbt.datediff(first, second, 'second') }} as {{ dbt.type_bigint() }})
{%- endmacro %}


{# A timestamp as text a reader knows, 'YYYY-MM-DD HH:MM:SS', the same on every warehouse. #}
{% macro kore_timestamp_text(timestamp) -%}
    {{ return(adapter.dispatch('kore_timestamp_text', 'kore_billing')(timestamp)) }}
{%- endmacro %}

{% macro default__kore_timestamp_text(timestamp) -%}
    to_char({{ timestamp }}, 'YYYY-MM-DD HH24:MI:SS')
{%- endmacro %}

{% macro duckdb__kore_timestamp_text(timestamp) -%}
    strftime({{ timestamp }}, '%Y-%m-%d %H:%M:%S')
{%- endmacro %}


{# A number of seconds (0 or more) as text: '16 min 1 s'. #}
{% macro kore_duration_text(seconds) -%}
    cast(cast(floor({{ seconds }} / 60.0) as {{ dbt.type_bigint() }}) as {{ dbt.type_string() }})
    || ' min '
    || cast(cast({{ seconds }} - 60 * floor({{ seconds }} / 60.0) as {{ dbt.type_bigint() }})
        as {{ dbt.type_string() }})
    || ' s'
{%- endmacro %}


{#
  var kore_billing_price_per_session: billingSessionType -> price of one billing session (a
  number, 0 or more). Returns the map, checked; empty when the var is unset or empty, and then
  the models add no amount column.
#}
{% macro kore_prices() -%}
    {%- set prices = var('kore_billing_price_per_session', {}) or {} -%}
    {%- if prices is not mapping -%}
        {{ exceptions.raise_compiler_error(
            "var kore_billing_price_per_session must map each billingSessionType to the price"
            ~ " of one session, e.g. {\"Conversations\": 0.01}, not '" ~ prices ~ "'") }}
    {%- endif -%}
    {%- for session_type, price in prices.items() -%}
        {%- if price is not number or price is sameas true or price is sameas false
            or price < 0 -%}
            {{ exceptions.raise_compiler_error(
                "var kore_billing_price_per_session: the price of '" ~ session_type
                ~ "' must be a number, 0 or more, not '" ~ price ~ "'") }}
        {%- endif -%}
        {#- Amounts are numeric(28, 6): a finer price would be rounded without a word. -#}
        {%- set millionths = price * 1000000 -%}
        {%- if (millionths - millionths | round) | abs > 0.000001 -%}
            {{ exceptions.raise_compiler_error(
                "var kore_billing_price_per_session: the price of '" ~ session_type ~ "' ("
                ~ price ~ ") has more than 6 decimal places, which the amounts (numeric with"
                ~ " 6) would round; give it in at most 6") }}
        {%- endif -%}
    {%- endfor -%}
    {{ return(prices) }}
{%- endmacro %}


{# The type of every amount and price column. #}
{% macro kore_amount_type() -%}
    {{ dbt.type_numeric() }}
{%- endmacro %}


{#
  The price of one session of the billingSessionType in `session_type` (a column), from var
  kore_billing_price_per_session; null for a type the var does not price.
#}
{% macro kore_price_of(session_type) -%}
    {%- if not kore_prices() -%}
    cast(null as {{ kore_amount_type() }})
    {%- else -%}
    case {{ session_type }}
        {%- for name, price in kore_prices().items() %}
        when '{{ name | replace("'", "''") }}' then cast({{ '%.10f' | format(price) }} as {{ kore_amount_type() }})
        {%- endfor %}
    end
    {%- endif -%}
{%- endmacro %}


{#
  sum(`quantity` * `price`) over a group, null when any row with a quantity has no price: an
  amount that leaves out a type without a price would look complete and be too low.
#}
{% macro kore_sum_amount(quantity, price) -%}
    case
        when sum(case when {{ quantity }} <> 0 and {{ price }} is null then 1 else 0 end) = 0
        then cast(coalesce(sum({{ quantity }} * {{ price }}), 0) as {{ kore_amount_type() }})
    end
{%- endmacro %}


{#- An ID as the audit orders and compares it: byte order on every warehouse, so that "the
    greater billing_session_id" of two sessions starting together is the same one everywhere
    (PostgreSQL would otherwise use its database's collation, where 'a' < 'B'). -#}
{% macro kore_id_order(column) -%}
    {{ return(adapter.dispatch('kore_id_order', 'kore_billing')(column)) }}
{%- endmacro %}

{% macro default__kore_id_order(column) -%}
    {{ column }}
{%- endmacro %}

{% macro postgres__kore_id_order(column) -%}
    {{ column }} collate "C"
{%- endmacro %}
