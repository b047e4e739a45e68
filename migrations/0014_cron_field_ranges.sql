-- Cron expressions refused when a field's value is out of range (61 * * * *, 99 99 99 99 99)
-- or when the day of month and the month can never coincide (0 0 31 2 *): such a schedule
-- was accepted and then silently never ran. Triggers on ebb.schedules and ebb.policies
-- refuse them with the field named when a cron is written or changed, e.g.
--   schedules.cron: minute (field 1): 61 is out of range 0-59 (got '61 * * * *')
-- Rows written before keep working as they did: updating their other columns (the
-- scheduler's bookkeeping, enabling a policy) is not refused; the scheduler marks them in
-- schedules.invalid_reason.
-- The grammar is croner's (the scheduler's parser): numbers or names (JAN, MON), a-b ranges,
-- */n and a-b/n steps, lists; ? in day of month and weekday; L, LW and nW in day of month;
-- nL and n#k in weekday (0 and 7 are Sunday). Never stricter than croner on what can fire.

-- One value of a field as a number, or null when it is neither a number nor a known name.
create function ebb.cron_value(token text, field_name text) returns integer
language sql immutable as $$
  select case
    when token ~ '^[0-9]{1,6}$' then token::integer
    when field_name = 'month' then array_position(
      array['JAN','FEB','MAR','APR','MAY','JUN','JUL','AUG','SEP','OCT','NOV','DEC'], upper(token))
    when field_name = 'weekday' then array_position(
      array['SUN','MON','TUE','WED','THU','FRI','SAT'], upper(token)) - 1
  end
$$;

-- Null when `field` is a valid value of the cron field `field_name` (range lo-hi, steps up to
-- max_step), else the reason.
create function ebb.cron_field_error(field text, field_name text, lo integer, hi integer, max_step integer)
returns text
language plpgsql immutable as $$
declare
  part text;
  m text[];
  a integer;
  b integer;
  step integer;
begin
  foreach part in array string_to_array(field, ',') loop
    if part = '' then
      return format('%s has an empty list item', quote_literal(field));
    end if;
    if part in ('*', '?') then
      continue;
    end if;
    if field_name = 'day of month' and upper(part) in ('L', 'LW') then
      continue;
    end if;
    if field_name = 'day of month' and part ~* '^[0-9]+W$' then
      a := ebb.cron_value(left(part, -1), field_name);
      if a is null or a < 1 or a > 31 then
        return format('%s is out of range 1-31', part);
      end if;
      continue;
    end if;
    if field_name = 'weekday' and part ~* '^[0-9A-Za-z]+(L|#[0-9]+|#L)$' then
      m := regexp_match(part, '^([0-9A-Za-z]+?)(L|#([0-9]+|L))$', 'i');
      a := ebb.cron_value(m[1], field_name);
      if a is null or a < 0 or a > 7 then
        return format('%s: %s is not a weekday (0-7 or SUN-SAT)', part, m[1]);
      end if;
      if m[3] is not null and upper(m[3]) <> 'L' and (m[3]::bigint < 1 or m[3]::bigint > 5) then
        return format('%s: the nth weekday must be 1-5 or L', part);
      end if;
      continue;
    end if;
    m := regexp_match(part, '^(\*|[0-9A-Za-z]+)(-([0-9A-Za-z]+))?(/([0-9]+))?$');
    if m is null then
      return format('%s is not a value, range or step', quote_literal(part));
    end if;
    if m[5] is not null then
      if length(m[5]) > 6 or m[5]::integer < 1 or m[5]::integer > max_step then
        return format('%s: step %s is out of range 1-%s', part, m[5], max_step);
      end if;
      if m[1] <> '*' and m[3] is null then
        return format('%s: a step needs * or a range before it (e.g. */%s)', part, m[5]);
      end if;
    end if;
    if m[1] = '*' then
      if m[3] is not null then
        return format('%s is not a value, range or step', quote_literal(part));
      end if;
      continue;
    end if;
    a := ebb.cron_value(m[1], field_name);
    if a is null or a < lo or a > hi then
      return format('%s is out of range %s-%s', m[1], lo, hi);
    end if;
    if m[3] is not null then
      b := ebb.cron_value(m[3], field_name);
      if b is null or b < lo or b > hi then
        return format('%s is out of range %s-%s', m[3], lo, hi);
      end if;
      if a > b then
        return format('%s: the range runs backwards', part);
      end if;
    end if;
  end loop;
  return null;
end $$;

-- The values a day-of-month or month field selects, or null when it uses *, ?, L or W
-- (then the field is not what keeps a schedule from firing).
create function ebb.cron_field_values(field text, field_name text, lo integer, hi integer) returns integer[]
language plpgsql immutable as $$
declare
  part text;
  m text[];
  a integer;
  b integer;
  out integer[] := '{}';
begin
  foreach part in array string_to_array(field, ',') loop
    m := regexp_match(part, '^(\*|[0-9A-Za-z]+)(-([0-9A-Za-z]+))?(/([0-9]+))?$');
    if m is null or (m[1] = '*' and m[5] is null) then
      return null;
    end if;
    a := case when m[1] = '*' then lo else ebb.cron_value(m[1], field_name) end;
    b := case when m[1] = '*' then hi when m[3] is not null then ebb.cron_value(m[3], field_name) else a end;
    if a is null or b is null then
      return null;
    end if;
    out := out || array(select generate_series(a, b, coalesce(m[5]::integer, 1)));
  end loop;
  return out;
end $$;

-- Null when every field of `expr` is in range and the schedule can fire, else the reason.
-- Expressions of the wrong shape are left to ebb.cron_shape_error (it runs first).
create function ebb.cron_range_error(expr text) returns text
language plpgsql immutable as $$
declare
  fields text[];
  names text[];
  lows integer[];
  highs integer[];
  steps integer[];
  problem text;
  days integer[];
  months integer[];
  month_days constant integer[] := array[31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
begin
  if ebb.cron_shape_error(expr) is not null or btrim(expr) like '@%' then
    return null;
  end if;
  fields := regexp_split_to_array(btrim(expr), '\s+');
  names := array['minute', 'hour', 'day of month', 'month', 'weekday'];
  lows := array[0, 0, 1, 1, 0];
  highs := array[59, 23, 31, 12, 7];
  steps := array[60, 24, 31, 12, 7];
  if array_length(fields, 1) = 6 then
    names := 'second'::text || names;
    lows := 0 || lows;
    highs := 59 || highs;
    steps := 60 || steps;
  end if;
  for i in 1 .. array_length(fields, 1) loop
    problem := ebb.cron_field_error(fields[i], names[i], lows[i], highs[i], steps[i]);
    if problem is not null then
      return format('%s (field %s): %s', names[i], i, problem);
    end if;
  end loop;
  -- With an unrestricted weekday a day is picked by day of month AND month: 31 February or
  -- 30-31 February never comes. (A restricted weekday fires on its weekdays anyway.)
  if fields[array_length(fields, 1)] in ('*', '?') then
    days := ebb.cron_field_values(fields[array_length(fields, 1) - 2], 'day of month', 1, 31);
    months := ebb.cron_field_values(fields[array_length(fields, 1) - 1], 'month', 1, 12);
    if months is null then
      months := array[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
    end if;
    if days is not null and not exists (
      select 1 from unnest(months) mo where (select min(d) from unnest(days) d) <= month_days[mo]
    ) then
      return format('day of month %s never falls in month %s: the schedule would never fire',
                    fields[array_length(fields, 1) - 2], fields[array_length(fields, 1) - 1]);
    end if;
  end if;
  return null;
end $$;

-- Checked when a cron is written or changed only. Named to fire after the *_before_write
-- triggers (same timing, alphabetical order), so a shape error is reported first.
create function ebb.cron_ranges_before_write() returns trigger
language plpgsql as $$
declare
  problem text;
begin
  if new.cron is not null and (tg_op = 'INSERT' or new.cron is distinct from old.cron) then
    problem := ebb.cron_range_error(new.cron);
    if problem is not null then
      raise exception '%.cron: % (got %)', tg_table_name, problem, quote_literal(new.cron)
        using errcode = 'check_violation', column = 'cron';
    end if;
  end if;
  return new;
end $$;

create trigger schedules_cron_ranges before insert or update of cron on ebb.schedules
  for each row execute function ebb.cron_ranges_before_write();
create trigger policies_cron_ranges before insert or update of cron on ebb.policies
  for each row execute function ebb.cron_ranges_before_write();
