/** Types of the npm package parse-prometheus-text-format (it ships none). */
export interface PromMetric {
  value?: string;
  labels?: Record<string, string>;
  buckets?: Record<string, string>;
  quantiles?: Record<string, string>;
}
export interface PromFamily {
  name: string;
  help: string;
  type: string;
  metrics: PromMetric[];
}
export default function parsePrometheusTextFormat(text: string): PromFamily[];
