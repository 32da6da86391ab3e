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

  A table that is not there: with `required` (the two billing streams, which every check reads)
  the build fails with one line naming the schema, the database and the var to set, because a
  wrong kore_billing_schema would otherwise build empty models that report no mismatch and no
  finding. The optional streams (apps, app_links: a project loaded before they existed), and
  every stream when var kore_billing_allow_missing_sources is true (before the first load), give
  an empty result with the same columns and a warning naming the table.
#}
{% macro kore_stage(table_name, columns, keys, required=true) -%}
    {%- set relation = source('kore_billing', table_name) -%}
    {%- set loaded = load_relation(relation) if execute else relation -%}
    {%- set allow_missing = kore_allow_missing_sources() -%}
    {%- if loaded is none and required and not allow_missing %}
        {{- exceptions.raise_compiler_error(
            "schema " ~ relation.schema ~ " in database " ~ relation.database ~ " has no table "
            ~ relation.identifier ~ " (the tap's " ~ table_name ~ " stream): set var"
            ~ " kore_billing_schema (in this repository's Meltano project: the dbt utility's"
            ~ " source_schema setting) to the schema the loader writes to, or var"
            ~ " kore_billing_allow_missing_sources: true to build empty models before the first"
            ~ " load."
        ) -}}
    {%- elif loaded is none %}
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


{#
  var kore_billing_allow_missing_sources: true or false (also the words 'true' and 'false', as
  a value from the environment arrives).
#}
{% macro kore_allow_missing_sources() -%}
    {%- set value = var('kore_billing_allow_missing_sources', false) -%}
    {%- if value in [true, false] -%}
        {{ return(value) }}
    {%- elif value | string | lower in ['true', 'false'] -%}
        {{ return(value | string | lower == 'true') }}
    {%- endif -%}
    {{ exceptions.raise_compiler_error(
        "var kore_billing_allow_missing_sources must be true or false, not '" ~ value ~ "'") }}
{%- endmacro %}
