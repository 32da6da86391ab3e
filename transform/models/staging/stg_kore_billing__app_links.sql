-- One row per link from a Parent app to a linked app and state: `published` links are the ones
-- that route sessions (and so bill them to the linked app), `configured` ones are drafts.
{{ kore_stage('app_links', [
    ('parentBotId', 'parent_bot_id', dbt.type_string()),
    ('linkedBotId', 'linked_bot_id', dbt.type_string()),
    ('state', 'link_state', dbt.type_string()),
    ('name', 'linked_app_name', dbt.type_string()),
    ('appType', 'linked_app_kind', dbt.type_string()),
    ('type', 'linked_app_type', dbt.type_string()),
    ('status', 'linked_app_status', dbt.type_int()),
    ('defaultLanguage', 'linked_default_language', dbt.type_string()),
    ('configuredVersion', 'configured_version', dbt.type_int()),
    ('publishedVersion', 'published_version', dbt.type_int()),
], keys=['parentBotId', 'linkedBotId', 'state'], required=false) }}
