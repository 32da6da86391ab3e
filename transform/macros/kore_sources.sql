{#
  How the loaders name the tap's camelCase columns (DuckDB and PostgreSQL checked by loading):
  - target-duckdb lowercases them (billingsessionid); DuckDB matches names case-insensitively,
    so the name as the tap spells it works unquoted.
  - MeltanoLabs target-postgres keeps them (billingSessionId); PostgreSQL folds unquoted names
    to lower case, so they have to be quoted.
  - MeltanoLabs target-snowflake writes them unquoted in lower case (per its source), which
    Snowflake folds to upper case; an unquoted reference resolves to them.
  Override kore_column for another adapter with a macro named <adapter>__kore_column.
#}
{% macro kore_column(name) -%}
    {{ return(adapter.dispatch('kore_column', 'kore_billing')(name)) }}
{%- endmacro %}

{% macro default__kore_column(name) -%}
    {{ name }}
{%- endmacro %}

{% macro postgres__kore_column(name) -%}
    {{ adapter.quote(name) }}
{%- endmacro %}


{#
  A staging select over one loaded table: each column cast once and renamed to snake_case.
  `columns` is a list of (name in the tap, name in the model, type). When the table has not
  been loaded yet (a stream not selected, or a first run before the tap has that stream), the
  model is an empty result with the same columns and a warning says which table is missing, so
  the rest of the project still builds.
#}
{% macro kore_stage(table_name, columns) -%}
    {%- set relation = source('kore_billing', table_name) -%}
    {%- set loaded = load_relation(relation) if execute else relation -%}
    {%- if loaded is none %}
        {{- exceptions.warn(
            "source table " ~ relation ~ " does not exist (yet): " ~ this.identifier
            ~ " is empty. Load the tap's " ~ table_name ~ " stream into that schema, or point"
            ~ " the utility's source_schema setting at the loader's schema."
        ) -}}
select
    {%- for tap_name, model_name, data_type in columns %}
    cast(null as {{ data_type }}) as {{ model_name }}{{ "," if not loop.last }}
    {%- endfor %}
where 1 = 0
    {%- else %}
select
    {%- for tap_name, model_name, data_type in columns %}
    cast({{ kore_column(tap_name) }} as {{ data_type }}) as {{ model_name }}{{ "," if not loop.last }}
    {%- endfor %}
from {{ relation }}
    {%- endif %}
{%- endmacro %}
