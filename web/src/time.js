// Time in the city's zone (China Standard Time, UTC+8, no daylight saving) and the windows the
// wall offers. Window ends are rounded up to the next minute, so a window's URLs (and the
// server's caches) stay the same for a minute and then move on by themselves.

const CITY_OFFSET_MS = 8 * 3600 * 1000;
const DAY_MS = 24 * 3600 * 1000;
const MINUTE_MS = 60 * 1000;

/** The start of the city's day containing `now`. */
export function cityMidnight(now) {
  const local = now.getTime() + CITY_OFFSET_MS;
  return new Date(Math.floor(local / DAY_MS) * DAY_MS - CITY_OFFSET_MS);
}

/** The start of the city's month containing `now`. */
export function cityMonthStart(now) {
  const local = new Date(now.getTime() + CITY_OFFSET_MS);
  return new Date(Date.UTC(local.getUTCFullYear(), local.getUTCMonth(), 1) - CITY_OFFSET_MS);
}

/** The next whole minute after `now`. */
export function nextMinute(now) {
  return new Date(Math.floor(now.getTime() / MINUTE_MS) * MINUTE_MS + MINUTE_MS);
}

/** `YYYY-MM-DD HH:MM[:SS]` in the city's time. */
export function cityTime(date, { seconds = false, day = true } = {}) {
  const s = new Date(date.getTime() + CITY_OFFSET_MS).toISOString();
  const clock = seconds ? s.slice(11, 19) : s.slice(11, 16);
  return day ? `${s.slice(0, 10)} ${clock}` : clock;
}

/** A `datetime-local` input's value (city time) as a Date. */
export function fromCityInput(value) {
  return value ? new Date(Date.parse(`${value}:00Z`) - CITY_OFFSET_MS) : null;
}

/** A Date as a `datetime-local` input's value (city time). */
export function toCityInput(date) {
  return new Date(date.getTime() + CITY_OFFSET_MS).toISOString().slice(0, 16);
}

/**
 * The window for a choice of the time bar: `today`, `7d`, `30d`, or `custom` with `from` and
 * `to` Dates. Returns `{ from, to, label }` with ISO strings.
 */
export function windowFor(choice, now, custom = {}) {
  const to = nextMinute(now);
  let from;
  let label;
  switch (choice) {
    case 'today':
      from = cityMidnight(now);
      label = '今日';
      break;
    case '7d':
      from = new Date(to.getTime() - 7 * DAY_MS);
      label = '近7天';
      break;
    case 'custom':
      return {
        from: custom.from.toISOString(),
        to: custom.to.toISOString(),
        label: `${cityTime(custom.from)} — ${cityTime(custom.to)}`,
      };
    default:
      from = new Date(to.getTime() - 30 * DAY_MS);
      label = '近30天';
  }
  return { from: from.toISOString(), to: to.toISOString(), label };
}

export { DAY_MS, MINUTE_MS };
