{#-
  The invoice check per routing family. With dynamic routing a Parent app hands sessions to its
  linked apps, and those are billed to the linked app, so the per-app check can show +n on a
  linked app and -n on its Parent for the same period and unit; summed over the family they
  cancel.

  - A family is a Parent and the apps it has a `published` link to (stg_kore_billing__app_links).
    An app published-linked from several Parents joins the one with the smallest
    parent_bot_id; an app with no published link to it is its own family. Links are followed
    one step: a Parent that is itself linked from another Parent joins that one's family, while
    its own linked apps stay in a family named after it.
  - The rows are the per-app rows of kore_billing__reconciliation (app groups such as `ALL`,
    var all_apps_bot_ids, left out: they already span every app), summed per family,
    granularity, period and unit. summary_count is null only when no member has a value.
  - status follows the per-app rules: `open` while the period is open, else `match` when the
    family's difference is 0, else `mismatch`.
  - complete is false when a member app (by link, whether or not it has rows) was not read:
    billing_readable false (refused) or null (not tried) in the apps stream, so the family's
    numbers lack it.
-#}
{%- set all_apps_bot_ids = var('all_apps_bot_ids', ['ALL']) -%}

with

published_links as (
    select parent_bot_id, linked_bot_id
    from {{ ref('stg_kore_billing__app_links') }}
    where link_state = 'published'
        and parent_bot_id <> linked_bot_id
),

-- min(): one Parent per linked app, the same one every run.
linked_parent as (
    select
        linked_bot_id as bot_id,
        min(parent_bot_id) as family_bot_id
    from published_links
    group by linked_bot_id
),

app_names as (
    select bot_id, app_name, billing_readable
    from {{ ref('stg_kore_billing__apps') }}
),

app_rows as (
    select *
    from {{ ref('kore_billing__reconciliation') }}
    {%- if all_apps_bot_ids %}
    where bot_id not in (
        {%- for bot_id in all_apps_bot_ids -%}
        '{{ bot_id | replace("'", "''") }}'{{ ", " if not loop.last }}
        {%- endfor -%}
    )
    {%- endif %}
),

-- Every app any source names, so that an unreadable app without rows still counts as a member.
members as (
    select bot_id from app_names
    union
    select parent_bot_id as bot_id from published_links
    union
    select linked_bot_id as bot_id from published_links
    union
    select bot_id from app_rows
),

families as (
    select
        members.bot_id,
        coalesce(linked_parent.family_bot_id, members.bot_id) as family_bot_id
    from members
    left join linked_parent
        on members.bot_id = linked_parent.bot_id
),

completeness as (
    select
        families.family_bot_id,
        -- Not read (false: refused; null: not tried, e.g. include_linked_apps off) is not
        -- complete; an app the apps stream does not list cannot be judged and is left out.
        sum(
            case
                when app_names.bot_id is not null and app_names.billing_readable is null then 1
                when app_names.billing_readable = false then 1
                else 0
            end
        ) as unreadable_apps
    from families
    left join app_names
        on families.bot_id = app_names.bot_id
    group by families.family_bot_id
),

family_counts as (
    select
        families.family_bot_id,
        app_rows.granularity,
        app_rows.period_start,
        app_rows.period_end,
        app_rows.unit,
        count(*) as apps,
        sum(app_rows.detail_count) as detail_count,
        -- sum() skips nulls and is null when every member's value is.
        sum(app_rows.summary_count) as summary_count,
        max(case when app_rows.status = 'open' then 1 else 0 end) as open_apps
    from app_rows
    inner join families
        on app_rows.bot_id = families.bot_id
    group by
        families.family_bot_id,
        app_rows.granularity,
        app_rows.period_start,
        app_rows.period_end,
        app_rows.unit
)

select
    family_counts.family_bot_id,
    app_names.app_name as family_name,
    family_counts.granularity,
    family_counts.period_start,
    family_counts.period_end,
    family_counts.unit,
    cast(family_counts.apps as {{ dbt.type_bigint() }}) as apps,
    cast(family_counts.detail_count as {{ dbt.type_bigint() }}) as detail_count,
    cast(family_counts.summary_count as {{ dbt.type_bigint() }}) as summary_count,
    cast(
        family_counts.detail_count - coalesce(family_counts.summary_count, 0)
        as {{ dbt.type_bigint() }}
    ) as difference,
    case
        when family_counts.open_apps = 1 then 'open'
        when family_counts.detail_count = coalesce(family_counts.summary_count, 0) then 'match'
        else 'mismatch'
    end as status,
    coalesce(completeness.unreadable_apps, 0) = 0 as complete
from family_counts
left join app_names
    on family_counts.family_bot_id = app_names.bot_id
left join completeness
    on family_counts.family_bot_id = completeness.family_bot_id
