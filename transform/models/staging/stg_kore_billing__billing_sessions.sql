-- One row per billing session, as the tap extracted it: typed and renamed, the newest copy of
-- each billingSessionId (an append-only load keeps every copy the tap sent).
{{ kore_stage('billing_sessions', [
    ('billingSessionId', 'billing_session_id', dbt.type_string()),
    ('botId', 'bot_id', dbt.type_string()),
    ('channel', 'channel', dbt.type_string()),
    ('billingSessionType', 'billing_session_type', dbt.type_string()),
    ('billingSessionStartDateTime', 'billing_session_started_at', dbt.type_timestamp()),
    ('billingSessionEndDateTime', 'billing_session_ended_at', dbt.type_timestamp()),
    ('conversationSessionId', 'conversation_session_id', dbt.type_string()),
    ('conversationSessionStartDateTime', 'conversation_session_started_at', dbt.type_timestamp()),
    ('conversationSessionEndDateTime', 'conversation_session_ended_at', dbt.type_timestamp()),
    ('koreUserId', 'kore_user_id', dbt.type_string()),
    ('channelUserId', 'channel_user_id', dbt.type_string()),
], keys=['billingSessionId']) }}
