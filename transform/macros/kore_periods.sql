{#
  Period arithmetic for the granularities of the usage summary: 'hour', 'day' and 'month'.
  `granularity` is a SQL expression (a column), so the datepart is chosen row by row.
#}
{% macro kore_period_start(granularity, timestamp) -%}
    case {{ granularity }}
        {%- for part in ['hour', 'day', 'month'] %}
        when '{{ part }}' then cast({{ dbt.date_trunc(part, timestamp) }} as {{ dbt.type_timestamp() }})
        {%- endfor %}
    end
{%- endmacro %}

{% macro kore_period_end(granularity, period_start) -%}
    case {{ granularity }}
        {%- for part in ['hour', 'day', 'month'] %}
        when '{{ part }}' then cast({{ dbt.dateadd(part, 1, period_start) }} as {{ dbt.type_timestamp() }})
        {%- endfor %}
    end
{%- endmacro %}


{#
  The moment that decides whether a period has ended: var reconcile_as_of (UTC) if set, else
  the current time in UTC, as a timestamp without time zone like the loaded columns.
#}
{% macro kore_reconcile_as_of() -%}
    {%- set as_of = var('reconcile_as_of', '') -%}
    {%- if as_of -%}
        cast('{{ as_of }}' as {{ dbt.type_timestamp() }})
    {%- else -%}
        {{ return(adapter.dispatch('kore_utc_now', 'kore_billing')()) }}
    {%- endif -%}
{%- endmacro %}

{% macro default__kore_utc_now() -%}
    cast({{ dbt.current_timestamp() }} as {{ dbt.type_timestamp() }})
{%- endmacro %}

{% macro postgres__kore_utc_now() -%}
    (now() at time zone 'UTC')
{%- endmacro %}

{% macro duckdb__kore_utc_now() -%}
    (now() at time zone 'UTC')
{%- endmacro %}

{% macro snowflake__kore_utc_now() -%}
    convert_timezone('UTC', current_timestamp())::timestamp_ntz
{%- endmacro %}
