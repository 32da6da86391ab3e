{#
  How the loaders name the tap's camelCase columns (each checked by loading; Snowflake on the
  fakesnow emulation, tests/pipeline/test_snowflake.py):
  - target-duckdb lowercases them (billingsessionid); DuckDB matches names case-insensitively,
    so the name as the tap spells it works unquoted.
  - MeltanoLabs target-postgres keeps them (billingSessionId); PostgreSQL folds unquoted names
    to lower case, so they have to be quoted.
  - MeltanoLabs target-snowflake writes them unquoted in lower case, which Snowflake folds to
    upper case (BILLINGSESSIONID); an unquoted reference resolves to them.
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
  A staging select over one loaded table: each column cast once and renamed to snake_case, one
  row per key. `columns` is a list of (name in the tap, name in the model, type); `keys` the tap
  names of the stream's key.

  One row per key whatever the loader does: an upserting loader leaves one row per key already,
  but an append-only one (or a load method without upserts) keeps every copy the tap sent, and
  each run re-sends its lookback. The row kept is the newest by the loader's metadata columns
  that the table has, in this order: _sdc_extracted_at (when the tap read it), _sdc_received_at,
  _sdc_batched_at, _sdc_sequence. A table with none of them (target-duckdb, which upserts) keeps
  any one of the copies.

  When the table has not been loaded yet (a stream not selected, or a first run before the tap
  has that stream), the model is an empty result with the same columns and a warning says which
  table is missing, so the rest of the project still builds.
#}
{% macro kore_stage(table_name, columns, keys) -%}
    {%- set relation = source('kore_billing', table_name) -%}
    {%- set loaded = load_relation(relation) if execute else relation -%}
    {%- if loaded is none %}
        {{- exceptions.warn(
            "source table " ~ relation ~ " does not exist (yet): " ~ this.identifier
            ~ " is empty. Load the tap's " ~ table_name ~ " stream into that schema, or set"
            ~ " var kore_billing_schema (in this repository's Meltano project: the dbt"
            ~ " utility's source_schema setting) to the loader's schema."
        ) -}}
select
    {%- for tap_name, model_name, data_type in columns %}
    cast(null as {{ data_type }}) as {{ model_name }}{{ "," if not loop.last }}
    {%- endfor %}
where 1 = 0
    {%- else %}
        {%- set present = [] -%}
        {%- if execute -%}
            {%- for column in adapter.get_columns_in_relation(loaded) -%}
                {%- do present.append(column.name | lower) -%}
            {%- endfor -%}
        {%- endif -%}
        {%- set newest_first = [] -%}
        {%- for name in ['_sdc_extracted_at', '_sdc_received_at', '_sdc_batched_at', '_sdc_sequence'] -%}
            {%- if name in present -%}
                {%- do newest_first.append(kore_column(name) ~ ' desc nulls last') -%}
            {%- endif -%}
        {%- endfor -%}
        {%- set key_columns = [] -%}
        {%- for key in keys -%}
            {%- do key_columns.append(kore_column(key)) -%}
        {%- endfor %}
select
    {%- for tap_name, model_name, data_type in columns %}
    cast({{ kore_column(tap_name) }} as {{ data_type }}) as {{ model_name }}{{ "," if not loop.last }}
    {%- endfor %}
from (
    select
        loaded.*,
        row_number() over (
            partition by {{ key_columns | join(', ') }}
            order by {{ (newest_first or key_columns) | join(', ') }}
        ) as kore_copy
    from {{ relation }} as loaded
) as copies
where kore_copy = 1
    {%- endif %}
{%- endmacro %}
