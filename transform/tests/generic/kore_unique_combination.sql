{#
  The combination of `columns` is unique in the model: returns each repeated combination with
  the number of rows that share it.
#}
{% test kore_unique_combination(model, columns) %}
select
    {{ columns | join(', ') }},
    count(*) as rows_with_this_key
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}
