// oko serve through the official openai npm client (pinned in package.json): models,
// chat (whole and streamed, which must agree), text completions, logprobs, and errors surfacing as
// the client's typed exceptions. Usage: node client_test.mjs BASE_URL API_KEY MODEL
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const [baseURL, apiKey, model] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0 });

async function streamed(request) {
  const out = { text: '', reasoning: '', finish: null, usage: null };
  for await (const chunk of await request) {
    if (chunk.usage) out.usage = chunk.usage;
    for (const c of chunk.choices) {
      out.text += c.delta?.content ?? c.text ?? '';
      out.reasoning += c.delta?.reasoning_content ?? '';
      if (c.finish_reason) out.finish = c.finish_reason;
    }
  }
  return out;
}

async function rejects(promise, errorClass, status, param) {
  await assert.rejects(promise, (e) => {
    assert.ok(e instanceof errorClass, `${e.constructor.name}: ${e.message}`);
    assert.equal(e.status, status);
    if (param !== undefined) assert.equal(e.param, param);
    return true;
  });
}

const models = await client.models.list();
assert.deepEqual(models.data.map((m) => m.id), [model]);

const chatRequest = {
  model,
  messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi!' }],
  max_tokens: 10, seed: 11, temperature: 0.7, top_p: 0.9, presence_penalty: 0.5, frequency_penalty: 0.5,
};
const chat = await client.chat.completions.create(chatRequest);
assert.equal(chat.object, 'chat.completion');
assert.equal(chat.choices.length, 1);
assert.equal(chat.choices[0].message.role, 'assistant');
assert.ok(['stop', 'length'].includes(chat.choices[0].finish_reason));
assert.equal(chat.usage.total_tokens, chat.usage.prompt_tokens + chat.usage.completion_tokens);

const s = await streamed(client.chat.completions.create({ ...chatRequest, stream: true, stream_options: { include_usage: true } }));
assert.equal(s.text, chat.choices[0].message.content);
assert.equal(s.finish, chat.choices[0].finish_reason);
assert.equal(s.usage.completion_tokens, chat.usage.completion_tokens);

const noThinking = await client.chat.completions.create({
  ...chatRequest, max_completion_tokens: 4, chat_template_kwargs: { enable_thinking: false },
});
assert.ok(noThinking.usage.completion_tokens <= 4);
assert.equal(noThinking.choices[0].message.reasoning_content, undefined);

const completion = await client.completions.create({ model, prompt: 'Once upon a time', max_tokens: 6, seed: 2 });
assert.equal(completion.object, 'text_completion');
assert.equal(typeof completion.choices[0].text, 'string');
const sc = await streamed(client.completions.create({ model, prompt: 'Once upon a time', max_tokens: 6, seed: 2, stream: true }));
assert.equal(sc.text, completion.choices[0].text);

// Log-probabilities in both shapes: chat's per-token entries, completions' columns.
const withLogprobs = await client.chat.completions.create({ ...chatRequest, logprobs: true, top_logprobs: 2 });
const entries = withLogprobs.choices[0].logprobs.content;
assert.equal(entries.length, withLogprobs.usage.completion_tokens);
for (const e of entries) {
  assert.ok(e.logprob <= 0 && typeof e.token === 'string' && Array.isArray(e.bytes));
  assert.equal(e.top_logprobs.length, 2);
  assert.ok(e.top_logprobs[0].logprob >= e.top_logprobs[1].logprob);
}
const completionLogprobs = await client.completions.create({ model, prompt: 'Once upon a time', max_tokens: 6, logprobs: 3 });
const columns = completionLogprobs.choices[0].logprobs;
assert.equal(columns.tokens.length, completionLogprobs.usage.completion_tokens);
assert.equal(columns.token_logprobs.length, columns.tokens.length);
assert.ok(columns.top_logprobs.every((alternatives) => Object.keys(alternatives).length <= 3));

await rejects(client.chat.completions.create({ model, messages: [{ role: 'wizard', content: 'x' }] }),
  OpenAI.BadRequestError, 400, 'messages[0].role');
await rejects(client.chat.completions.create({ ...chatRequest, temperature: 9 }), OpenAI.BadRequestError, 400, 'temperature');
await rejects(client.chat.completions.create({ ...chatRequest, n: 3 }), OpenAI.UnprocessableEntityError, 422, 'n');
await rejects(client.completions.create({ model, prompt: [1, 'x'] }), OpenAI.BadRequestError, 400, 'prompt');
await rejects(new OpenAI({ baseURL, apiKey: 'wrong', maxRetries: 0 }).models.list(), OpenAI.AuthenticationError, 401);
await rejects(client.models.retrieve(model), OpenAI.NotFoundError, 404);
console.log('openai client test: ok');
